// Leader failover (kill -9 the leader, time to the first acknowledged write)
// and leader stability under load.
import { performance } from 'node:perf_hooks'
import { sleep, type Cluster, type Member } from './cluster.ts'
import { keepAliveAgent, request } from './http.ts'
import { closedLoop, type LoadResult } from './load.ts'

export interface FailoverTrial {
  killed: string
  /** ms from kill -9 of the leader to the first successful write through a survivor; null if none within the limit. */
  ms: number | null
  newLeader?: string
}

const RETRY_EVERY_MS = 20
/** Enough that a write stuck in a dead leader (etcd drops forwarded proposals silently) never delays the next attempt. */
const MAX_IN_FLIGHT = 256
const ATTEMPT_TIMEOUT_MS = 5_000
const GIVE_UP_MS = 30_000

/**
 * Kills the leader with SIGKILL, then starts a write through a survivor every
 * ~20 ms (alternating survivors, each allowed 5 s, not waiting for earlier
 * attempts) until one is acknowledged. Restarts the killed member and waits for health afterwards.
 */
export async function failoverTrial(cluster: Cluster, value: string, trial: number): Promise<FailoverTrial> {
  const leader = await cluster.waitHealthy()
  const survivors = cluster.members.filter((m) => m !== leader)
  const agent = keepAliveAgent(MAX_IN_FLIGHT)
  // Open connections to the survivors first so the measurement excludes TCP setup.
  for (const s of survivors) {
    const { method, path, body } = cluster.put(`failover/warm-${s.name}`, value)
    await request(agent, method, s.url + path, body, 5_000)
  }

  const t0 = performance.now()
  const { exited } = cluster.kill(leader)
  let done: number | null = null
  let inFlight = 0
  let n = 0
  let wake: () => void = () => undefined
  const finished = new Promise<void>((r) => (wake = r))
  const attempt = async (via: Member, seq: number) => {
    inFlight++
    try {
      const { method, path, body } = cluster.put(`failover/t${trial}/${seq}`, value)
      const res = await request(agent, method, via.url + path, body, ATTEMPT_TIMEOUT_MS)
      if (res.status === 200 && done === null) {
        done = performance.now() - t0
        wake()
      }
    } catch {
      // connection refused/reset or timeout: the next attempt follows
    } finally {
      inFlight--
    }
  }
  const ticker = (async () => {
    while (done === null && performance.now() - t0 < GIVE_UP_MS) {
      if (inFlight < MAX_IN_FLIGHT) void attempt(survivors[n % survivors.length]!, n++)
      await sleep(RETRY_EVERY_MS)
    }
    wake()
  })()
  await finished
  await ticker
  await exited
  const ms = done as number | null
  const newLeader = ms === null ? undefined : (await cluster.observe().catch(() => undefined))?.leader

  await cluster.restart(leader)
  await cluster.waitHealthy(60_000)
  agent.destroy()
  return { killed: leader.name, ms, ...(newLeader ? { newLeader } : {}) }
}

export interface StabilityResult {
  load: LoadResult
  leaderChanges: number
  leaders: string[]
  elections: number | null
  samples: number
  samplesWithoutLeader: number
  /** Slowest answer to the leader poll (all members asked in parallel): shows event-loop stalls. */
  slowestPollMs: number
  /** The members' warnings and leadership log lines during the run. */
  events: string[]
}

/** A fault-free loaded run through the leader, watching the leader every ~250 ms. */
export async function stabilityRun(cluster: Cluster, clients: number, durationMs: number, value: string): Promise<StabilityResult> {
  const leader = await cluster.waitHealthy()
  const before = await cluster.observe()
  const startedAt = Date.now()
  let current = before.leader
  const leaders = current ? [current] : []
  let changes = 0
  let samples = 0
  let none = 0
  let slowestPoll = 0
  let lastElections = before.elections
  const load = await closedLoop({
    cluster, targets: [leader], clients, warmupMs: 0, durationMs, value,
    onTick: async () => {
      const polled = performance.now()
      const v = await cluster.observe()
      slowestPoll = Math.max(slowestPoll, performance.now() - polled)
      samples++
      if (v.elections !== undefined) lastElections = Math.max(lastElections ?? 0, v.elections)
      if (!v.leader) {
        none++
        return
      }
      if (v.leader !== current) {
        changes++
        current = v.leader
        leaders.push(v.leader)
      }
    },
  })
  const after = await cluster.observe()
  if (after.leader && after.leader !== current) {
    changes++
    leaders.push(after.leader)
  }
  const elections = before.elections === undefined ? null : Math.max(after.elections ?? 0, lastElections ?? 0) - before.elections
  return { load, leaderChanges: changes, leaders, samples, samplesWithoutLeader: none, slowestPollMs: slowestPoll, elections, events: cluster.events(startedAt) }
}
