// Three real agent processes replicating through Raft over libp2p: writes
// continue when the leader is killed, nothing acknowledged is lost across a
// full restart, and SIGTERM hands leadership over first.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, tempDir } from '../harness/agent.ts'

interface MemberView { name: string; role: string }

async function put(agent: AgentProcess, path: string, value: string): Promise<boolean> {
  try {
    const res = await fetch(`${agent.address}/v1/var/${path}`, { method: 'PUT', body: JSON.stringify({ value }), signal: AbortSignal.timeout(5_000) })
    return res.ok
  } catch {
    return false
  }
}

async function consistentGet(agent: AgentProcess, path: string): Promise<string | null> {
  const res = await fetch(`${agent.address}/v1/var/${path}?consistent`, { signal: AbortSignal.timeout(10_000) })
  if (res.status === 404) return null
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { value: string }).value
}

async function leaderOf(agents: AgentProcess[]): Promise<AgentProcess> {
  return eventually(async () => {
    for (const a of agents) {
      if (a.exited) continue
      const members = await a.get<MemberView[]>('/v1/members').catch(() => [])
      const leader = members.find((m) => m.role === 'leader')
      const match = leader && agents.find((x) => x.options.name === leader.name && !x.exited)
      if (match) return match
    }
    return undefined
  }, { what: 'a leader', timeoutMs: 15_000 })
}

test('3 agents: kill -9 the leader → writes continue; restart all → every acknowledged write is there; SIGTERM transfers leadership', async (t) => {
  const dir = await tempDir('raft3')
  const hosts = ['127.0.0.51', '127.0.0.52', '127.0.0.53']
  const p2p = await freePort(hosts[0])
  const seed = `${hosts[0]}:${p2p}`
  const opts = await Promise.all(hosts.map(async (h, i) => ({
    dataDir: join(dir, `a${i + 1}`), name: `raft-a${i + 1}`, bind: i === 0 ? seed : `${h}:${await freePort(h)}`,
    httpPort: await freePort(), dev: false, extraArgs: ['--snapshot-threshold', '16'], ...(i === 0 ? {} : { join: [seed] }),
  })))
  let agents: AgentProcess[] = [await AgentProcess.start(opts[0]!)]
  // Over a megabyte of state, compacted into a snapshot, before the others join:
  // they catch up through a chunked InstallSnapshot.
  const big = 'x'.repeat(60_000)
  for (let i = 0; i < 20; i++) t.true(await put(agents[0]!, `big/${i}`, `${i}:${big}`))
  await eventually(async () => /snapshot at index \d+, log compacted/.test(agents[0]!.output), { what: 'a compacted log on the first agent' })
  agents.push(...(await Promise.all(opts.slice(1).map((o) => AgentProcess.start(o)))))
  t.teardown(async () => {
    for (const a of agents) await a.kill()
    await rm(dir, { recursive: true, force: true })
  })

  await eventually(async () => {
    const roles = (await agents[0]!.get<MemberView[]>('/v1/members')).map((m) => m.role).sort()
    return roles.join() === 'leader,voter,voter'
  }, { what: '3 voters', timeoutMs: 20_000 })

  for (const a of agents.slice(1)) t.is(await consistentGet(a, 'big/19'), `19:${big}`, `snapshot reached ${a.options.name}`)
  const acked: string[] = []
  for (let i = 0; i < 30; i++) {
    const via = agents[i % 3]!
    t.true(await put(via, `k/${i}`, `v${i}`), `write ${i} through ${via.options.name}`)
    acked.push(`k/${i}`)
  }

  // kill -9 the leader: writes through the survivors continue.
  const leader = await leaderOf(agents)
  await leader.kill('SIGKILL')
  const survivors = agents.filter((a) => a !== leader)
  const started = Date.now()
  await eventually(async () => put(survivors[0]!, 'k/after-kill', 'x'), { what: 'a write after the leader died', intervalMs: 20 })
  t.log(`first write after kill -9 of the leader: ${Date.now() - started} ms`)
  acked.push('k/after-kill')
  for (let i = 30; i < 40; i++) {
    t.true(await put(survivors[i % 2]!, `k/${i}`, `v${i}`))
    acked.push(`k/${i}`)
  }

  // The killed agent comes back on its own data and catches up.
  const back = await AgentProcess.start(leader.options)
  agents = [...survivors, back]
  t.is(await consistentGet(back, 'k/39'), 'v39')

  // Full restart from disk: every acknowledged write is there, on every agent.
  for (const a of agents) await a.kill('SIGKILL')
  agents = await Promise.all(opts.map((o) => AgentProcess.start(o)))
  for (const a of agents) {
    for (const k of acked) t.not(await consistentGet(a, k), null, `${k} on ${a.options.name}`)
  }

  // SIGTERM on the leader hands leadership to another voter before exiting.
  const l2 = await leaderOf(agents)
  await l2.kill('SIGTERM')
  t.regex(l2.output, /leadership handed to/)
  const others = agents.filter((a) => a !== l2)
  const l3 = await leaderOf(others)
  t.not(l3, l2)
  t.true(await put(others[0]!, 'k/after-term', 'y'))
})
