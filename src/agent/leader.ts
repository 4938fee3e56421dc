// The evaluation broker and plan applier, run by the leader: every pending
// evaluation is handed to the scheduler and its plan committed. Delivery is
// at-least-once: an evaluation stays pending until a plan for it commits.
import { randomUUID } from 'node:crypto'
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import { jobVersionKey, type StateStore } from '../fsm/state.ts'
import { schedule, type SchedulerState } from '../scheduler/index.ts'
import type { Evaluation } from '../structs/index.ts'
import { isDeepStrictEqual } from 'node:util'
import type { Proposer } from './proposer.ts'

const RETRY_DELAY_MS = 1_000

export function schedulerView(state: StateStore): SchedulerState {
  return {
    nodes: () => state.list('nodes'),
    job: (id) => state.get('jobs', id),
    jobVersion: (id, version) => state.get('jobVersions', jobVersionKey(id, version)),
    allocsOfJob: (id) => state.allocsOfJob(id),
    allocsOfNode: (id) => state.allocsOfNode(id),
    evalsOfJob: (id) => state.list('evals').filter((e) => e.jobId === id),
  }
}

export interface Logger {
  info(msg: string): void
  warn(msg: string): void
}

export class EvalBroker {
  readonly #fsm: Fsm
  readonly #proposer: Proposer
  readonly #log: Logger
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

  constructor(fsm: Fsm, proposer: Proposer, log: Logger) {
    this.#fsm = fsm
    this.#proposer = proposer
    this.#log = log
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
    const ready: Evaluation[] = []
    for (const ev of state.list('evals')) {
      if (ev.status === 'blocked' && retryBlocked) ready.push(ev)
      if (ev.status !== 'pending') continue
      if ((ev.waitUntil ?? 0) > now) nextWake = Math.min(nextWake, ev.waitUntil!)
      else ready.push(ev)
    }
    ready.sort((a, b) => a.createIndex - b.createIndex)
    for (const ev of ready) {
      if (this.#stopped) return
      const current = state.get('evals', ev.id)
      if (!current || (current.status !== 'pending' && current.status !== 'blocked')) continue
      try {
        await this.#process(current)
      } catch (err) {
        this.#log.warn(`evaluation ${ev.id} of job ${ev.jobId} failed, will retry: ${(err as Error).message}`)
        nextWake = Math.min(nextWake, Date.now() + RETRY_DELAY_MS)
      }
    }
    clearTimeout(this.#timer)
    if (nextWake < Infinity && !this.#stopped) {
      this.#timer = setTimeout(() => this.wake(), Math.max(0, nextWake - Date.now()))
    }
  }

  async #process(ev: Evaluation): Promise<void> {
    const plan = schedule(schedulerView(this.#fsm.state), ev, { now: Date.now(), newId: randomUUID })
    const nothingNew = plan.place.length === 0 && plan.stop.length === 0 && plan.newEvals.length === 0 && plan.inPlace.length === 0 &&
      plan.evalUpdate.status === ev.status && isDeepStrictEqual(plan.evalUpdate.failedGroups, ev.failedGroups)
    // A blocked evaluation retried without progress is left as it is: no write.
    if (nothingNew && ev.status === 'blocked') return
    const result = await this.#proposer.propose({
      type: 'PlanApply', evalId: ev.id, place: plan.place, stop: plan.stop, inPlace: plan.inPlace,
      evalUpdate: plan.evalUpdate, newEvals: plan.newEvals, time: plan.evalUpdate.modifyTime,
    })
    if (!result.ok) throw new Error(result.error)
    if (plan.place.length || plan.stop.length) {
      this.#log.info(`eval ${ev.id.slice(0, 8)} (${ev.triggeredBy}) job ${ev.jobId}: placed ${plan.place.length}, stopped ${plan.stop.length}${plan.evalUpdate.status === 'blocked' ? `, blocked: ${plan.evalUpdate.statusDescription}` : ''}`)
    }
  }
}
