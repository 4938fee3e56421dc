// The evaluation broker and plan applier, run by the leader: every pending
// evaluation is handed to the scheduler and its plan committed. Delivery is
// at-least-once: an evaluation stays pending until a plan for it commits.
//
// Plans are pipelined: while one commits (Raft round trips and fsyncs) the
// next evaluation is scheduled against the state plus the placements still in
// flight, so it neither counts on capacity they take nor reuses their ports.
// Plans overlap only when those in flight merely add allocations, and never
// two of one job: if such a plan fails to commit, those scheduled after it only
// assumed less free capacity than there is. While a plan that stops or updates
// allocations is in flight nothing else is scheduled: not needed for safety (a
// later plan sees stopped allocations as live until the stop applies), it keeps
// the overlap to the common case, plans that only place.
import { randomUUID } from 'node:crypto'
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import type { NewAlloc } from '../fsm/commands.ts'
import { jobVersionKey, type NodeUsage, type StateStore } from '../fsm/state.ts'
import { schedule, type SchedulerState } from '../scheduler/index.ts'
import type { Allocation, Evaluation } from '../structs/index.ts'
import { isDeepStrictEqual } from 'node:util'
import type { Proposer } from './proposer.ts'

const RETRY_DELAY_MS = 1_000
/** Plans proposed and not yet applied, at most. */
const MAX_PLANS_IN_FLIGHT = 4

export function schedulerView(state: StateStore): SchedulerState {
  return {
    nodes: () => state.nodesSortedById(),
    job: (id) => state.get('jobs', id),
    jobVersion: (id, version) => state.get('jobVersions', jobVersionKey(id, version)),
    allocsOfJob: (id) => state.allocsOfJob(id),
    allocsOfNode: (id) => state.allocsOfNode(id),
    evalsOfJob: (id) => state.evalsOfJob(id),
    nodeUsage: (id) => state.nodeUsage(id),
    latestDeployment: (id) => state.latestDeployment(id),
  }
}

/** The placements of one plan proposed and not yet applied, by node and by job (built once per plan). */
export class PlannedPlacements {
  readonly place: readonly NewAlloc[]
  readonly byNode = new Map<string, Allocation[]>()
  readonly byJob = new Map<string, Allocation[]>()

  constructor(place: readonly NewAlloc[]) {
    this.place = place
    for (const p of place) {
      const a: Allocation = { ...p, createIndex: 0, modifyIndex: 0 }
      push(this.byNode, a.nodeId, a)
      push(this.byJob, a.jobId, a)
    }
  }

  /** Whether the state holds them already (a plan applies all at once). */
  appliedIn(state: StateStore): boolean {
    return this.place.length === 0 || state.get('allocs', this.place[0]!.id) !== undefined
  }
}

/**
 * The state as it will be once the given plans' placements are applied: they
 * are added to the allocations of their nodes and jobs, and to the nodes'
 * usage. Plans the state already holds count once.
 */
export function viewWithPlacements(state: StateStore, plans: readonly PlannedPlacements[]): SchedulerState {
  const base = schedulerView(state)
  const pending = plans.filter((p) => !p.appliedIn(state))
  if (pending.length === 0) return base
  const extraOf = (index: 'byNode' | 'byJob', key: string): Allocation[] | undefined => {
    let out: Allocation[] | undefined
    for (const p of pending) {
      const list = p[index].get(key)
      if (list) out = out ? [...out, ...list] : list
    }
    return out
  }
  // Per node, on first use: the state's usage plus the placements in flight.
  const usage = new Map<string, NodeUsage | undefined>()
  const nodeUsage = (nodeId: string): NodeUsage | undefined => {
    if (usage.has(nodeId)) return usage.get(nodeId)
    const b = state.nodeUsage(nodeId)
    const extra = extraOf('byNode', nodeId)
    let u: NodeUsage | undefined = b
    if (extra) {
      const own = { cpu: b?.cpu ?? 0, memoryMB: b?.memoryMB ?? 0, ports: new Set(b?.ports), jobGroups: new Map(b?.jobGroups) }
      for (const a of extra) {
        own.cpu += a.resources.cpu
        own.memoryMB += a.resources.memoryMB
        for (const p of a.resources.ports) own.ports.add(p.value)
        const key = `${a.jobId}/${a.group}`
        own.jobGroups.set(key, (own.jobGroups.get(key) ?? 0) + 1)
      }
      u = own
    }
    usage.set(nodeId, u)
    return u
  }
  return {
    ...base,
    allocsOfJob: (id) => withExtra(state.allocsOfJob(id), extraOf('byJob', id)),
    allocsOfNode: (id) => withExtra(state.allocsOfNode(id), extraOf('byNode', id)),
    nodeUsage,
  }
}

function push<T>(m: Map<string, T[]>, key: string, v: T): void {
  const list = m.get(key)
  if (list) list.push(v)
  else m.set(key, [v])
}

const withExtra = (base: Allocation[], extra: Allocation[] | undefined) => (extra ? [...base, ...extra] : base)

export interface Logger {
  info(msg: string): void
  warn(msg: string): void
}

/** Optional hooks for measuring the broker (the placement benchmark); none is needed to run it. */
export interface EvalBrokerObserver {
  /** schedule() returned: how long it took and what the plan holds. */
  scheduled?(info: { evalId: string; jobId: string; ms: number; place: number; stop: number; status: string }): void
  /** The plan's PlanApply committed and was applied locally. */
  committed?(info: { evalId: string; jobId: string; ms: number; place: number }): void
}

/** A plan proposed and not yet applied. */
interface InFlight {
  jobId: string
  placements: PlannedPlacements
  /** It stops or updates allocations: nothing is scheduled until it is applied. */
  exclusive: boolean
}

export class EvalBroker {
  readonly #fsm: Fsm
  readonly #proposer: Proposer
  readonly #log: Logger
  readonly #observer: EvalBrokerObserver
  readonly #inFlight = new Set<InFlight>()
  #running = false
  #kick = false
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  /** Blocked evaluations wait for capacity: re-run when nodes or allocations change. */
  #capacityChanged = false
  readonly #onApplied = (e: AppliedEvent) => {
    if (e.changes.some((c) => c.table === 'nodes' || (c.table === 'allocs' && c.value && c.value.desiredStatus === 'stop'))) {
      this.#capacityChanged = true
    }
    this.wake()
  }

  constructor(fsm: Fsm, proposer: Proposer, log: Logger, observer: EvalBrokerObserver = {}) {
    this.#fsm = fsm
    this.#proposer = proposer
    this.#log = log
    this.#observer = observer
  }

  start(): void {
    this.#fsm.on('applied', this.#onApplied)
    this.#capacityChanged = true
    this.wake()
  }

  stop(): void {
    this.#stopped = true
    this.#fsm.off('applied', this.#onApplied)
    clearTimeout(this.#timer)
  }

  wake(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#kick = true
      return
    }
    this.#running = true
    void this.#drain().finally(() => {
      this.#running = false
      if (this.#kick) {
        this.#kick = false
        this.wake()
      }
    })
  }

  async #drain(): Promise<void> {
    const state = this.#fsm.state
    const retryBlocked = this.#capacityChanged
    this.#capacityChanged = false
    const now = Date.now()
    let nextWake = Infinity
    const ready: Evaluation[] = retryBlocked ? state.evalsByStatus('blocked') : []
    for (const ev of state.evalsByStatus('pending')) {
      if ((ev.waitUntil ?? 0) > now) nextWake = Math.min(nextWake, ev.waitUntil!)
      else ready.push(ev)
    }
    ready.sort((a, b) => a.createIndex - b.createIndex || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const commits = new Set<Promise<void>>()
    for (const ev of ready) {
      // Wait until this evaluation may be scheduled while the plans in flight commit.
      while (commits.size > 0 && !this.#mayOverlap(ev.jobId)) await Promise.race(commits)
      if (this.#stopped) break
      const current = state.get('evals', ev.id)
      if (!current || (current.status !== 'pending' && current.status !== 'blocked')) continue
      const commit: Promise<void> = this.#process(current)
        .catch((err: unknown) => {
          this.#log.warn(`evaluation ${ev.id} of job ${ev.jobId} failed, will retry: ${(err as Error).message}`)
          nextWake = Math.min(nextWake, Date.now() + RETRY_DELAY_MS)
          // Plans scheduled after this one counted on its placements: blocked ones may fit after all.
          this.#capacityChanged = true
        })
        .finally(() => commits.delete(commit))
      commits.add(commit)
    }
    await Promise.all(commits)
    clearTimeout(this.#timer)
    if (nextWake < Infinity && !this.#stopped) {
      this.#timer = setTimeout(() => this.wake(), Math.max(0, nextWake - Date.now()))
    }
  }

  /** Whether an evaluation of `jobId` may be scheduled now, alongside the plans in flight. */
  #mayOverlap(jobId: string): boolean {
    if (this.#inFlight.size >= MAX_PLANS_IN_FLIGHT) return false
    for (const f of this.#inFlight) if (f.exclusive || f.jobId === jobId) return false
    return true
  }

  /** Schedules the evaluation at once (before the first await), then commits its plan. */
  async #process(ev: Evaluation): Promise<void> {
    const started = performance.now()
    const view = this.#inFlight.size === 0
      ? schedulerView(this.#fsm.state)
      : viewWithPlacements(this.#fsm.state, [...this.#inFlight].map((f) => f.placements))
    const plan = schedule(view, ev, { now: Date.now(), newId: randomUUID })
    const scheduled = performance.now()
    this.#observer.scheduled?.({
      evalId: ev.id, jobId: ev.jobId, ms: scheduled - started, place: plan.place.length, stop: plan.stop.length, status: plan.evalUpdate.status,
    })
    const nothingNew = plan.place.length === 0 && plan.stop.length === 0 && plan.newEvals.length === 0 && plan.inPlace.length === 0 &&
      plan.deployment === undefined && plan.deploymentUpdates.length === 0 &&
      plan.evalUpdate.status === ev.status && isDeepStrictEqual(plan.evalUpdate.failedGroups, ev.failedGroups)
    // A blocked evaluation retried without progress is left as it is: no write.
    if (nothingNew && ev.status === 'blocked') return
    const exclusive = plan.stop.length > 0 || plan.inPlace.length > 0
    const flight: InFlight = { jobId: ev.jobId, placements: new PlannedPlacements(plan.place), exclusive }
    this.#inFlight.add(flight)
    let result
    try {
      result = await this.#proposer.propose({
        type: 'PlanApply', evalId: ev.id, place: plan.place, stop: plan.stop, inPlace: plan.inPlace,
        evalUpdate: plan.evalUpdate, newEvals: plan.newEvals, time: plan.evalUpdate.modifyTime,
        ...(plan.deployment ? { deployment: plan.deployment } : {}),
        ...(plan.deploymentUpdates.length > 0 ? { deploymentUpdates: plan.deploymentUpdates } : {}),
      })
    } finally {
      this.#inFlight.delete(flight)
    }
    if (!result.ok) throw new Error(result.error)
    this.#observer.committed?.({ evalId: ev.id, jobId: ev.jobId, ms: performance.now() - scheduled, place: plan.place.length })
    if (plan.place.length || plan.stop.length) {
      this.#log.info(`eval ${ev.id.slice(0, 8)} (${ev.triggeredBy}) job ${ev.jobId}: placed ${plan.place.length}, stopped ${plan.stop.length}${plan.evalUpdate.status === 'blocked' ? `, blocked: ${plan.evalUpdate.statusDescription}` : ''}`)
    }
  }
}
