// A real partition (iptables on the agents' loopback addresses): the minority
// side cannot commit, the majority elects a leader and keeps writing, and
// after healing every member converges (the isolated one, removed from the
// configuration meanwhile, rejoins).
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, tempDir } from '../harness/agent.ts'
import { Partitions, requireIptables } from '../harness/net.ts'

interface MemberView { name: string; status: string; role: string }
interface Self { stateIndex: number }

async function put(agent: AgentProcess, path: string, value: string, timeoutMs = 15_000): Promise<number> {
  try {
    const res = await fetch(`${agent.address}/v1/var/${path}`, { method: 'PUT', body: JSON.stringify({ value }), signal: AbortSignal.timeout(timeoutMs) })
    return res.status
  } catch {
    return 0
  }
}

test('partitioned leader: minority cannot commit, majority can; after healing all converge', async (t) => {
  requireIptables()
  const dir = await tempDir('partition')
  const hosts = ['127.0.0.111', '127.0.0.112', '127.0.0.113']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const net = new Partitions()
  const agents: AgentProcess[] = []
  t.teardown(async () => {
    net.heal()
    for (const a of agents) await a.kill()
    await rm(dir, { recursive: true, force: true })
  })
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({ dataDir: join(dir, `p${i + 1}`), name: `p${i + 1}`, bind, httpPort: await freePort(), dev: false, ...(i > 0 ? { join: [binds[0]!] } : {}) }))
  }
  const voters = async (via: AgentProcess) => (await via.get<MemberView[]>('/v1/members')).filter((m) => m.status === 'alive' && (m.role === 'leader' || m.role === 'voter')).map((m) => m.name)
  await eventually(async () => (await voters(agents[0]!)).length === 3, { what: '3 voters', timeoutMs: 20_000 })
  t.is(await put(agents[0]!, 'p/before', '1'), 200)

  const leaderName = (await agents[0]!.get<MemberView[]>('/v1/members')).find((m) => m.role === 'leader')!.name
  const leader = agents.find((a) => a.options.name === leaderName)!
  const majority = agents.filter((a) => a !== leader)
  const host = (a: AgentProcess) => a.options.bind.split(':')[0]!
  net.cut([host(leader)], majority.map(host))

  // The majority elects a new leader and commits.
  await eventually(async () => (await put(majority[0]!, 'p/majority', 'yes', 5_000)) === 200, { what: 'a write on the majority side', timeoutMs: 20_000 })
  // The isolated old leader cannot commit: its write fails (no quorum), it does not hang.
  const minority = await put(leader, 'p/minority', 'no')
  t.not(minority, 200, 'the minority side refused or could not complete the write')
  // Long enough for gossip to declare it dead and the leader to remove it from the configuration.
  await eventually(async () => (await majority[0]!.get<MemberView[]>('/v1/members')).find((m) => m.name === leaderName)?.role === 'none', { what: 'the isolated member removed from the configuration', timeoutMs: 20_000 })

  net.heal()
  await eventually(async () => {
    const r = await fetch(`${leader.address}/v1/var/p/majority?consistent`, { signal: AbortSignal.timeout(5_000) }).catch(() => null)
    return r?.ok
  }, { what: 'the healed member reads the majority\'s write', timeoutMs: 30_000 })
  await eventually(async () => (await voters(majority[0]!)).length === 3, { what: '3 voters again after healing', timeoutMs: 30_000 })
  await eventually(async () => {
    const idx = await Promise.all(agents.map(async (a) => (await a.get<Self>('/v1/agent/self')).stateIndex))
    return new Set(idx).size === 1
  }, { what: 'every FSM at the same index' })
  const lost = await fetch(`${majority[0]!.address}/v1/var/p/minority?consistent`)
  t.is(lost.status, 404, 'the write the minority could not commit never appears')
})
