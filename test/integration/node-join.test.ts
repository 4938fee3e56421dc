// `shoal node join PEER` on running agents.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface MemberView { name: string; role: string }

test('a standalone agent joins a cluster with node join; one holding state is refused and keeps it', async (t) => {
  const dir = await tempDir('node-join')
  const bind = async (host: string) => `${host}:${await freePort(host)}`
  const start = async (name: string, host: string) =>
    AgentProcess.start({ dataDir: join(dir, name), name, bind: await bind(host), httpPort: await freePort(), dev: false })
  const a = await start('join-a', '127.0.0.71')
  const b = await start('join-b', '127.0.0.72')
  const c = await start('join-c', '127.0.0.73')
  t.teardown(async () => {
    for (const x of [a, b, c]) await x.kill()
    await rm(dir, { recursive: true, force: true })
  })
  t.is((await runCli(['var', 'put', 'from/a', 'hello'], a.address)).code, 0)

  const r = await runCli(['node', 'join', a.options.bind], b.address)
  t.is(r.code, 0, r.stderr + b.output)
  t.regex(r.stdout, /joined the cluster/)
  await eventually(async () => {
    const roles = (await a.get<MemberView[]>('/v1/members')).map((m) => `${m.name}:${m.role}`).sort()
    return roles.join() === 'join-a:leader,join-b:voter'
  }, { what: 'join-b a voter of join-a\'s cluster', timeoutMs: 20_000 })
  const onB = await runCli(['var', 'get', 'from/a'], b.address)
  t.is(onB.stdout, 'hello\n', 'the joined agent has the cluster\'s state')
  await eventually(async () => (await b.get<{ name: string }[]>('/v1/nodes')).map((n) => n.name).sort().join() === 'join-a,join-b', { what: 'both nodes registered' })

  const again = await runCli(['node', 'join', a.options.bind], b.address)
  t.is(again.code, 0)
  t.regex(again.stdout, /already in the same cluster/)

  // An agent whose cluster holds state is refused, and keeps it.
  t.is((await runCli(['var', 'put', 'mine', 'keep'], c.address)).code, 0)
  const refused = await runCli(['node', 'join', a.options.bind], c.address)
  t.is(refused.code, 1)
  t.regex(refused.stderr, /cannot join another cluster: its cluster holds 0 job\(s\), 1 variable\(s\)/)
  t.is((await runCli(['var', 'get', 'mine'], c.address)).stdout, 'keep\n')

  const unreachable = await runCli(['node', 'join', `127.0.0.74:${await freePort('127.0.0.74')}`], c.address)
  t.is(unreachable.code, 1)
  t.regex(unreachable.stderr, /cannot reach peer/)
  const bad = await runCli(['node', 'join', ' '], c.address)
  t.is(bad.code, 1)
  t.regex(bad.stderr, /peer: must be a multiaddr or host:port/)
})
