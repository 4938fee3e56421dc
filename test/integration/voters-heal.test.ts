// Self-healing voters: with 5 agents and --voters 3, voters are killed one at
// a time (never more than a minority at once); each time the leader promotes
// a learner and drops the dead voter, and writes keep working. A second agent
// with a name already in use is refused.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface MemberView { name: string; status: string; role: string }

test('voters killed one at a time: the voter set heals each time and writes continue; duplicate names are refused', async (t) => {
  const dir = await tempDir('voters')
  const hosts = ['127.0.0.131', '127.0.0.132', '127.0.0.133', '127.0.0.134', '127.0.0.135']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const agents: AgentProcess[] = []
  t.teardown(async () => {
    for (const a of agents) await a.kill()
    await rm(dir, { recursive: true, force: true })
  })
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({ dataDir: join(dir, `v${i + 1}`), name: `v${i + 1}`, bind, httpPort: await freePort(), dev: false, ...(i > 0 ? { join: [binds[0]!] } : {}) }))
  }
  const alive = () => agents.filter((a) => !a.exited)
  const view = async () => alive()[0]!.get<MemberView[]>('/v1/members')
  const healthyVoters = async () => (await view()).filter((m) => m.status === 'alive' && (m.role === 'leader' || m.role === 'voter')).map((m) => m.name)
  await eventually(async () => (await healthyVoters()).length === 3, { what: '3 voters', timeoutMs: 20_000 })

  for (let round = 1; round <= 2; round++) {
    const members = await view()
    const voterName = members.find((m) => m.role === 'voter')!.name // a follower voter; the leader case is covered elsewhere
    const victim = agents.find((a) => a.options.name === voterName)!
    const started = Date.now()
    await victim.kill('SIGKILL')
    const healed = await eventually(async () => {
      const v = await healthyVoters()
      return v.length === 3 && !v.includes(voterName) && v
    }, { what: `voters healed after losing ${voterName}`, timeoutMs: 20_000 })
    t.log(`round ${round}: killed ${voterName}; voters ${healed.join(', ')} after ${Date.now() - started} ms`)
    await eventually(async () => (await view()).find((m) => m.name === voterName)?.role === 'none', { what: `${voterName} removed from the configuration`, timeoutMs: 20_000 })
    const w = await runCli(['var', 'put', `round/${round}`, 'ok'], alive()[0]!.address)
    t.is(w.code, 0, w.stderr)
  }
  t.is(alive().length, 3)

  const liveName = alive()[1]!.options.name
  const dup = await runCli(['agent', '--data-dir', join(dir, 'dup'), '--name', liveName, '--bind', `127.0.0.136:${await freePort('127.0.0.136')}`,
    '--http', `127.0.0.1:${await freePort()}`, '--join', alive()[0]!.options.bind], undefined, 60_000)
  t.is(dup.code, 1)
  t.regex(dup.stderr, new RegExp(`a member named "${liveName}" already exists`))

  // The name of a dead, removed member passes to its replacement.
  agents.push(await AgentProcess.start({
    dataDir: join(dir, 'v2-new'), name: 'v2', bind: `127.0.0.137:${await freePort('127.0.0.137')}`, httpPort: await freePort(), dev: false, join: [alive()[0]!.options.bind],
  }))
  await eventually(async () => (await view()).filter((m) => m.name === 'v2').map((m) => m.status).join() === 'alive', { what: 'one member named v2, alive' })
})
