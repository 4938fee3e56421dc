// Checks once the faults have stopped and the cluster has quiesced:
//   - final reads of every key through every agent (recorded into the history, so
//     the linearizability check sees them) agree, and every acknowledged write is
//     present or superseded: no ok write's modifyIndex is past the final one;
//   - every FSM is at the same index with the same vars, jobs and allocations;
//   - the service job has exactly `count` running allocations, no allocation name
//     live twice, and the real task processes (the exec driver's handle files in
//     every data dir) are exactly those allocations, each on its own node.
import { liveTasks, type Agent, type Cluster, type SelfView } from './cluster.ts'
import { doRead } from './client.ts'
import type { HistoryRecorder, Operation } from './history.ts'

export interface InvariantResult {
  name: string
  ok: boolean
  /** safety: something wrong was observed; liveness: something right did not happen in time. */
  kind: 'safety' | 'liveness'
  detail: string
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface FinalRead { agent: string; key: string; value: string | null; modifyIndex: number | undefined }

/** A consistent read of every key through every agent, retried until it succeeds; recorded as ordinary ops. */
export async function finalReads(cluster: Cluster, keys: readonly string[], recorder: HistoryRecorder, firstProcess: number, deadline: number): Promise<FinalRead[]> {
  const out: FinalRead[] = []
  await Promise.all(cluster.agents.map(async (agent, i) => {
    for (const key of keys) {
      for (;;) {
        recorder.add({ type: 'invoke', process: firstProcess + i, f: 'read', key, node: agent.name })
        const r = await doRead(agent, key, 10_000)
        recorder.add({ type: r.type === 'ok' ? 'ok' : 'fail', process: firstProcess + i, f: 'read', key, node: agent.name, ...(r.type === 'ok' ? { value: r.value ?? null } : { error: r.error ?? '' }), ...(r.modifyIndex !== undefined && r.type === 'ok' ? { modifyIndex: r.modifyIndex } : {}) })
        if (r.type === 'ok') {
          out.push({ agent: agent.name, key, value: r.value ?? null, modifyIndex: r.modifyIndex })
          break
        }
        if (Date.now() > deadline) break
        await sleep(500)
      }
    }
  }))
  return out
}

/** Every agent read the same final value; every acknowledged write on a key is at or before the final one. */
export function checkAckedWrites(ops: readonly Operation[], finals: readonly FinalRead[], keys: readonly string[], agents: number): InvariantResult {
  const problems: string[] = []
  let acked = 0
  for (const key of keys) {
    const reads = finals.filter((f) => f.key === key)
    if (reads.length < agents) problems.push(`${key}: only ${reads.length}/${agents} agents answered the final read`)
    if (reads.length === 0) continue
    const distinct = new Set(reads.map((r) => `${r.value}@${r.modifyIndex}`))
    if (distinct.size > 1) problems.push(`${key}: agents disagree on the final value: ${reads.map((r) => `${r.agent}=${JSON.stringify(r.value)}@${r.modifyIndex}`).join(', ')}`)
    const final = reads[0]!
    const writes = ops.filter((o) => o.key === key && (o.f === 'write' || o.f === 'cas'))
    const okWrites = writes.filter((o) => o.status === 'ok')
    acked += okWrites.length
    if (final.value === null) {
      if (okWrites.length > 0) problems.push(`${key}: final value absent, but ${okWrites.length} writes were acknowledged (e.g. ${JSON.stringify(okWrites[0]!.f === 'write' ? okWrites[0]!.value : okWrites[0]!.to)})`)
      continue
    }
    const writer = writes.find((o) => (o.f === 'write' ? o.value : o.to) === final.value && o.status !== 'fail')
    if (!writer) problems.push(`${key}: final value ${JSON.stringify(final.value)} was never written (or only by failed ops)`)
    else if (writer.status === 'ok' && writer.modifyIndex !== final.modifyIndex) problems.push(`${key}: final value ${JSON.stringify(final.value)} at index ${final.modifyIndex}, but its write was acknowledged at ${writer.modifyIndex}`)
    const lost = okWrites.filter((o) => o.modifyIndex !== undefined && final.modifyIndex !== undefined && o.modifyIndex > final.modifyIndex)
    for (const o of lost.slice(0, 5)) problems.push(`${key}: acknowledged ${o.f} of ${JSON.stringify(o.f === 'write' ? o.value : o.to)} at index ${o.modifyIndex} is after the final value's index ${final.modifyIndex}: lost`)
  }
  return {
    name: 'acknowledged writes present or superseded', ok: problems.length === 0, kind: 'safety',
    detail: problems.length ? problems.join('\n') : `${acked} acknowledged writes on ${keys.length} keys; every agent reads the same final values`,
  }
}

async function snapshotOf(agent: Agent, prefix: string): Promise<{ index: number; body: string }> {
  const before = (await agent.get<SelfView>('/v1/agent/self')).stateIndex
  const [vars, jobs, allocs] = await Promise.all([
    agent.get<unknown[]>(`/v1/vars?prefix=${encodeURIComponent(prefix)}`, 10_000),
    agent.get<unknown[]>('/v1/jobs', 10_000),
    agent.get<{ id: string }[]>('/v1/allocations', 10_000),
  ])
  const after = (await agent.get<SelfView>('/v1/agent/self')).stateIndex
  if (before !== after) throw new Error(`${agent.name} moved from ${before} to ${after} while being read`)
  allocs.sort((a, b) => (a.id < b.id ? -1 : 1))
  return { index: before, body: JSON.stringify({ vars, jobs, allocs }) }
}

/** Every FSM at the same index holds the same vars, jobs and allocations (retried while the cluster still moves). */
export async function checkFsmsEqual(cluster: Cluster, prefix: string, timeoutMs = 60_000): Promise<InvariantResult> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    try {
      const snaps = await Promise.all(cluster.agents.map((a) => snapshotOf(a, prefix)))
      const indexes = snaps.map((s) => s.index)
      if (new Set(indexes).size !== 1) {
        last = `state indexes differ: ${cluster.agents.map((a, i) => `${a.name}=${indexes[i]}`).join(' ')}`
      } else {
        const bodies = new Set(snaps.map((s) => s.body))
        if (bodies.size === 1) return { name: 'all FSMs equal at the same index', ok: true, kind: 'safety', detail: `every agent at stateIndex ${indexes[0]} with identical vars, jobs and allocations` }
        const ref = snaps[0]!.body
        const differing = cluster.agents.filter((_, i) => snaps[i]!.body !== ref).map((a) => a.name)
        return { name: 'all FSMs equal at the same index', ok: false, kind: 'safety', detail: `same stateIndex ${indexes[0]} but different state on ${differing.join(', ')} (vs ${cluster.agents[0]!.name})\n${snaps.map((s, i) => `${cluster.agents[i]!.name}: ${s.body.slice(0, 2000)}`).join('\n')}` }
      }
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(500)
  }
  return { name: 'all FSMs equal at the same index', ok: false, kind: 'liveness', detail: `no stable common index within ${timeoutMs / 1000}s: ${last}` }
}

// ---- the service job ---------------------------------------------------------------

export function jobSpec(id: string, count: number): object {
  return {
    job: { [id]: { group: { g: { count, task: { t: { driver: 'exec', config: { command: '/bin/sleep', args: ['600'] }, resources: { cpu: 20, memory: 8 } } } } } } },
  }
}

export async function submitJob(agent: Agent, id: string, count: number, timeoutMs = 10_000): Promise<'ok' | 'fail' | 'info'> {
  try {
    const res = await fetch(`${agent.address}/v1/jobs`, { method: 'POST', body: JSON.stringify(jobSpec(id, count)), signal: AbortSignal.timeout(timeoutMs) })
    const body = (await res.json().catch(() => ({}))) as { retry?: boolean }
    if (res.ok) return 'ok'
    if (res.status === 503 && body.retry) return 'fail'
    return res.status >= 500 ? 'info' : 'fail'
  } catch (err) {
    return (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED' ? 'fail' : 'info'
  }
}

export interface JobEvent { time: number; agent: string; count: number; result: 'ok' | 'fail' | 'info' }

/** Re-registers the job with count 2 or 3 every few seconds through random agents, during the faults. */
export async function jobChurn(cluster: Cluster, id: string, rand: { pick<T>(x: readonly T[]): T; between(a: number, b: number): number }, stop: () => boolean, log: JobEvent[]): Promise<void> {
  while (!stop()) {
    await sleep(rand.between(2_000, 5_000))
    if (stop()) break
    const agent = rand.pick(cluster.agents)
    const count = rand.pick([2, 3])
    const result = await submitJob(agent, id, count)
    log.push({ time: performance.now(), agent: agent.name, count, result })
  }
}

interface AllocView { id: string; name: string; jobId: string; nodeName: string; desiredStatus: string; clientStatus: string }

/**
 * Exactly `count` allocations running for the job, no name live twice, and the real
 * task processes are exactly those allocations, each on the node the state says.
 */
export async function checkJob(cluster: Cluster, id: string, count: number, timeoutMs = 90_000): Promise<InvariantResult> {
  const name = `job ${id}: exactly ${count} running allocations, none on two nodes`
  const deadline = Date.now() + timeoutMs
  let last = ''
  let doubled = ''
  while (Date.now() < deadline) {
    try {
      const allocs = (await cluster.agents[0]!.get<AllocView[]>('/v1/allocations', 10_000)).filter((a) => a.jobId === id)
      const live = allocs.filter((a) => a.desiredStatus === 'run' && !['complete', 'failed', 'lost'].includes(a.clientStatus))
      const running = live.filter((a) => a.clientStatus === 'running')
      const names = new Map<string, AllocView[]>()
      for (const a of live) names.set(a.name, [...(names.get(a.name) ?? []), a])
      const dupNames = [...names].filter(([, xs]) => xs.length > 1)
      const tasks = (await liveTasks(cluster.agents.map((a) => a.spec.dataDir))).filter((t) => t.jobId === id)
      const byAlloc = new Map<string, string[]>()
      for (const t of tasks) byAlloc.set(t.allocId, [...(byAlloc.get(t.allocId) ?? []), t.agent])
      const multi = [...byAlloc].filter(([, nodes]) => nodes.length > 1)
      const stray = tasks.filter((t) => !running.some((a) => a.id === t.allocId && a.nodeName === t.agent))
      const missing = running.filter((a) => !tasks.some((t) => t.allocId === a.id && t.agent === a.nodeName))
      // A task process for the same slot name alive on two nodes at once.
      const slotNodes = new Map<string, Set<string>>()
      for (const t of tasks) {
        const a = allocs.find((x) => x.id === t.allocId)
        if (a) slotNodes.set(a.name, (slotNodes.get(a.name) ?? new Set()).add(t.agent))
      }
      const slotsTwice = [...slotNodes].filter(([, nodes]) => nodes.size > 1)
      if (multi.length || slotsTwice.length) doubled = [...multi.map(([a, n]) => `alloc ${a} has processes on ${n.join(', ')}`), ...slotsTwice.map(([s, n]) => `slot ${s} has processes on ${[...n].join(', ')}`)].join('; ')
      last = `${running.length}/${count} running (${live.length} live${dupNames.length ? `; names live twice: ${dupNames.map(([n]) => n).join(', ')}` : ''}); ${tasks.length} task processes${stray.length ? `; stray: ${stray.map((t) => `${t.allocId.slice(0, 8)} on ${t.agent}`).join(', ')}` : ''}${missing.length ? `; running without a process: ${missing.map((a) => `${a.id.slice(0, 8)} on ${a.nodeName}`).join(', ')}` : ''}`
      if (running.length === count && live.length === count && dupNames.length === 0 && multi.length === 0 && slotsTwice.length === 0 && stray.length === 0 && missing.length === 0) {
        return { name, ok: true, kind: 'safety', detail: `${count} running on ${running.map((a) => a.nodeName).sort().join(', ')}; task processes match${doubled ? ` (transiently seen before converging: ${doubled})` : ''}` }
      }
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(1_000)
  }
  return { name, ok: false, kind: doubled ? 'safety' : 'liveness', detail: `not converged within ${timeoutMs / 1000}s: ${last}${doubled ? `\nseen: ${doubled}` : ''}` }
}
