// The cluster pre-shared key: agents with the same key form a cluster; an
// agent with another key is refused with a clear error, within bounded time.
import test from 'ava'
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, ROOT, runCli, SHOAL, tempDir } from '../harness/agent.ts'

test('same key joins; another key fails with "cluster key mismatch"; a missing key file is named', async (t) => {
  const dir = await tempDir('keys')
  const keyA = join(dir, 'a.key')
  const keyB = join(dir, 'b.key')
  t.is((await runCli(['keygen', keyA])).code, 0)
  t.is((await runCli(['keygen', keyB])).code, 0)
  const seedPort = await freePort('127.0.0.61')
  const seed = `127.0.0.61:${seedPort}`
  const a = await AgentProcess.start({ dataDir: join(dir, 'a'), name: 'key-a', bind: seed, httpPort: await freePort(), dev: false, extraArgs: ['--cluster-key-file', keyA] })
  const agents = [a]
  t.teardown(async () => {
    for (const x of agents) await x.kill()
    await rm(dir, { recursive: true, force: true })
  })

  const b = await AgentProcess.start({
    dataDir: join(dir, 'b'), name: 'key-b', bind: `127.0.0.62:${await freePort('127.0.0.62')}`, httpPort: await freePort(),
    dev: false, join: [seed], extraArgs: ['--cluster-key-file', keyA],
  })
  agents.push(b)
  await eventually(async () => (await a.get<unknown[]>('/v1/members')).length === 2, { what: 'two members with the same key' })

  const started = Date.now()
  const wrong = spawn(SHOAL, ['agent', '--data-dir', join(dir, 'c'), '--name', 'key-c', '--bind', `127.0.0.63:${await freePort('127.0.0.63')}`,
    '--http', `127.0.0.1:${await freePort()}`, '--join', seed, '--cluster-key-file', keyB], { cwd: ROOT })
  let stderr = ''
  wrong.stderr.on('data', (d: Buffer) => (stderr += d))
  const code = await new Promise<number | null>((resolve) => wrong.on('exit', resolve))
  t.is(code, 1)
  t.regex(stderr, /cluster key mismatch/)
  t.true(Date.now() - started < 20_000, 'refused within bounded time')
  t.is((await a.get<unknown[]>('/v1/members')).length, 2, 'the cluster is unchanged')

  const missing = await runCli(['agent', '--data-dir', join(dir, 'd'), '--cluster-key-file', join(dir, 'nope.key')])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /--cluster-key-file: cannot read .*nope\.key/)
})
