// The leader's autoscaler: every group's evaluation_interval it measures the
// group (CPU from the allocations' nodes, requests from every agent's mesh),
// asks the pure policy (src/autoscale/policy.ts) what the count should be, and
// commits a change through Raft as a new job version (as `job scale` does),
// recording each decision in the group's scaling history.
import {
  allocCpuPercent, averageCpu, decide, gate, lastChangeTime, requestRate, shouldRecord,
  type CounterSample, type Decision, type GroupObservation, type MetricReading, type TaskUsage,
} from '../autoscale/policy.ts'
import type { Fsm } from '../fsm/fsm.ts'
import type { StateStore } from '../fsm/state.ts'
import type { Allocation, Job, TaskGroup } from '../structs/index.ts'
import { isDeploymentActive, scalingKey } from '../structs/index.ts'
import type { Logger } from './leader.ts'
import type { ClusterOps } from './ops.ts'

/** How often the loop looks for groups whose evaluation is due. */
const TICK_MS = 500
/** A node that does not answer within this long gives no reading this round. */
const FETCH_TIMEOUT_MS = 5_000

export type JsonFetch = (url: string, timeoutMs: number) => Promise<unknown>

const fetchJson: JsonFetch = async (url, timeoutMs) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const body = (await res.json()) as unknown
  if (!res.ok) throw new Error((body as { error?: string } | null)?.error ?? `HTTP ${res.status}`)
  return body
}

export interface AutoscalerOptions {
  fsm: Fsm
  ops: Pick<ClusterOps, 'scaleGroup' | 'recordScalingEvent'>
  log: Logger
  now?: () => number
  fetch?: JsonFetch
}

/** The mesh's answer on every agent: cumulative counters per service. */
interface MeshStats {
  services?: Record<string, { requests?: number }>
}

export class Autoscaler {
  readonly #fsm: Fsm
  readonly #ops: AutoscalerOptions['ops']
  readonly #log: Logger
  readonly #now: () => number
  readonly #fetch: JsonFetch
  /** Per `${job}/${group}`: when it is next due. */
  readonly #due = new Map<string, number>()
  readonly #busy = new Set<string>()
  /** Per group scaled on requests: the previous sample of the mesh counters. */
  readonly #samples = new Map<string, CounterSample>()
  #timer: NodeJS.Timeout | undefined

  constructor(o: AutoscalerOptions) {
    this.#fsm = o.fsm
    this.#ops = o.ops
    this.#log = o.log
    this.#now = o.now ?? Date.now
    this.#fetch = o.fetch ?? fetchJson
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), TICK_MS)
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #tick(): void {
    const now = this.#now()
    const state = this.#fsm.state
    const live = new Set<string>()
    for (const job of state.list('jobs')) {
      if (job.stop || job.type !== 'service') continue
      for (const g of job.groups) {
        if (!g.scaling) continue
        const key = scalingKey(job.id, g.name)
        live.add(key)
        const due = this.#due.get(key)
        // A new group (or a new leader) waits one interval: its allocations settle first.
        if (due === undefined) this.#due.set(key, now + g.scaling.evaluationIntervalMs)
        if (due === undefined || now < due || this.#busy.has(key)) continue
        this.#due.set(key, now + g.scaling.evaluationIntervalMs)
        this.#busy.add(key)
        void this.evaluate(job.id, g.name)
          .catch((err: unknown) => this.#log.warn(`autoscaler: ${job.id}/${g.name}: ${(err as Error).message}`))
          .finally(() => this.#busy.delete(key))
      }
    }
    for (const key of this.#due.keys()) {
      if (!live.has(key)) {
        this.#due.delete(key)
        this.#samples.delete(key)
      }
    }
  }

  /** One round for one group: measure, decide, commit or record. (The loop calls it when due.) */
  async evaluate(jobId: string, groupName: string): Promise<void> {
    const state = this.#fsm.state
    const job = state.get('jobs', jobId)
    const group = job?.groups.find((g) => g.name === groupName)
    if (!job || !group?.scaling) return
    const key = scalingKey(jobId, groupName)
    const history = state.get('scalingEvents', key)?.events ?? []
    const allocs = state.allocsOfJob(jobId).filter((a) => a.group === groupName && a.desiredStatus === 'run')
    const running = allocs.filter((a) => a.clientStatus === 'running')
    const observation: GroupObservation = {
      now: this.#now(), policy: group.scaling, count: group.count,
      running: running.length, starting: allocs.filter((a) => a.clientStatus === 'pending').length,
      lastChangeTime: lastChangeTime(history),
      // Every job version is rolled out by a deployment (the autoscaler's own changes too): wait until it ends.
      deploymentRunning: deploymentActive(state, jobId),
    }
    let decision: Decision | null = gate(observation)
    if (decision === null) {
      const reading = await this.#measure(state, job, group, running)
      decision = decide({ ...observation, now: this.#now() }, reading)
    }
    await this.#commit(job, group, decision, history.at(-1))
  }

  async #commit(job: Job, group: TaskGroup, d: Decision, last: Parameters<typeof shouldRecord>[1]): Promise<void> {
    const label = `${job.id}/${group.name}`
    if (d.action === 'scale') {
      const current = this.#fsm.state.get('jobs', job.id)
      // The job changed while we measured (a new version, `job scale`): decide again next round.
      if (!current || current.modifyIndex !== job.modifyIndex) return
      try {
        await this.#ops.scaleGroup(job, group.name, d.to, { source: 'autoscaler', reason: d.reason, message: d.message, measurement: d.measurement })
        this.#log.info(`autoscaler: ${label} ${group.count} → ${d.to}: ${d.message}`)
      } catch (err) {
        if ((err as { code?: string }).code === 'conflict') return
        throw err
      }
      return
    }
    if (!shouldRecord(d, last, this.#now())) return
    await this.#ops.recordScalingEvent(job.id, group.name, {
      source: 'autoscaler', from: group.count, to: group.count, reason: d.reason, message: d.message,
      ...(d.measurement ? { measurement: d.measurement } : {}),
    })
  }

  #measure(state: StateStore, job: Job, group: TaskGroup, running: Allocation[]): Promise<MetricReading> {
    return group.scaling!.policy.metric === 'cpu_percent'
      ? this.#measureCpu(state, running)
      : this.#measureRequests(state, job, group)
  }

  /** Average CPU over the running allocations, each sampled by its own node. */
  async #measureCpu(state: StateStore, running: Allocation[]): Promise<MetricReading> {
    const perAlloc = await Promise.all(running.map(async (a) => {
      const node = state.get('nodes', a.nodeId)
      if (!node || node.status === 'down') return { ok: false as const, reason: `its node is ${node ? 'down' : 'unknown'}`, allocId: a.id }
      try {
        const body = (await this.#fetch(`http://${node.http}/v1/client/allocation/${a.id}/stats`, FETCH_TIMEOUT_MS)) as { tasks?: Record<string, TaskUsage> }
        const r = allocCpuPercent(body.tasks ?? {})
        return r.ok ? r : { ...r, allocId: a.id }
      } catch (err) {
        return { ok: false as const, reason: `node ${node.name}: ${(err as Error).message}`, allocId: a.id }
      }
    }))
    return averageCpu(perAlloc)
  }

  /**
   * Requests per second per healthy instance: the sum over every ready agent
   * of the mesh's cumulative request counters of the group's services, as a
   * rate since the previous round, over the healthy instances of those
   * services (of any job: the mesh balances over all of them).
   */
  async #measureRequests(state: StateStore, job: Job, group: TaskGroup): Promise<MetricReading> {
    const services = groupServiceNames(group)
    if (services.length === 0) return { ok: false, reason: `group "${group.name}" has no service whose requests the mesh counts` }
    const key = scalingKey(job.id, group.name)
    const nodes = state.list('nodes').filter((n) => n.status === 'ready')
    const counters: Record<string, number> = {}
    const problems: string[] = []
    await Promise.all(nodes.map(async (n) => {
      try {
        const mesh = (await this.#fetch(`http://${n.http}/v1/agent/mesh`, FETCH_TIMEOUT_MS)) as MeshStats
        for (const s of services) counters[`${n.id}/${s}`] = mesh.services?.[s]?.requests ?? 0
      } catch (err) {
        problems.push(`node ${n.name}: ${(err as Error).message}`)
      }
    }))
    const sample: CounterSample = { time: this.#now(), counters }
    const previous = this.#samples.get(key)
    if (problems.length > 0) {
      this.#samples.delete(key)
      return { ok: false, reason: `mesh counters unavailable (${problems.sort().join('; ')})` }
    }
    this.#samples.set(key, sample)
    const serving = new Set<string>()
    const mine = new Set<string>()
    for (const name of services) {
      for (const i of state.serviceInstances(name)) {
        if (!i.healthy) continue
        serving.add(i.allocId)
        if (i.jobId === job.id && i.group === group.name) mine.add(i.allocId)
      }
    }
    if (mine.size === 0) return { ok: false, reason: `no healthy instance of ${services.map((s) => `"${s}"`).join(', ')}` }
    const rate = requestRate(previous, sample, serving.size)
    return rate.ok ? { ...rate, instances: mine.size } : rate
  }
}

function deploymentActive(state: StateStore, jobId: string): boolean {
  const d = state.latestDeployment(jobId)
  return d !== undefined && isDeploymentActive(d)
}

/** The names of the services a group registers (its own and its tasks'); the mesh counts requests per service. */
export function groupServiceNames(group: TaskGroup): string[] {
  return [...new Set((group.services ?? []).map((s) => s.name))]
}
