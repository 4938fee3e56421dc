// The node drainer, run by the leader: whenever nodes or allocations change
// (and at drain deadlines) it asks decideDrains() what to do next and
// proposes it: allocations to migrate with their evaluations, evaluations for
// migrations whose replacement is healthy, drains that are complete.
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import type { AllocTransition } from '../fsm/commands.ts'
import { isMigrating } from '../scheduler/migrate.ts'
import { decideDrains } from './drain-decisions.ts'
import type { Logger } from './leader.ts'

/** The writes the drainer needs (ClusterOps). */
export interface DrainWriter {
  markForMigration(transitions: AllocTransition[], jobIds: readonly string[]): Promise<unknown>
  endDrain(nodeId: string, outcome: 'complete', eligible: false): Promise<unknown>
}

/** Changes come in bursts (a plan, a batch of client updates): look once per burst. */
const SETTLE_MS = 100
const RETRY_MS = 1_000

export class NodeDrainer {
  readonly #fsm: Fsm
  readonly #writer: DrainWriter
  readonly #log: Logger
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #wakeTimer: NodeJS.Timeout | undefined
  #running = false
  #again = false
  #stopped = false
  /** Allocations marked to migrate and still live: while there are none and no node drains, there is nothing to decide. */
  readonly #migrating = new Set<string>()
  readonly #onApplied = (e: AppliedEvent) => {
    let relevant = false
    for (const c of e.changes) {
      if (c.table === 'nodes') relevant = true
      else if (c.table === 'allocs') {
        relevant = true
        if (c.value && isMigrating(c.value)) this.#migrating.add(c.key)
        else this.#migrating.delete(c.key)
      }
    }
    if (relevant) this.#schedule(SETTLE_MS)
  }

  constructor(fsm: Fsm, writer: DrainWriter, log: Logger, now: () => number = Date.now) {
    this.#fsm = fsm
    this.#writer = writer
    this.#log = log
    this.#now = now
  }

  readonly #onRestored = () => {
    this.#migrating.clear()
    for (const a of this.#fsm.state.list('allocs')) if (isMigrating(a)) this.#migrating.add(a.id)
    this.#schedule(0)
  }

  start(): void {
    this.#fsm.on('applied', this.#onApplied)
    this.#fsm.on('restored', this.#onRestored)
    this.#onRestored()
  }

  stop(): void {
    this.#stopped = true
    this.#fsm.off('applied', this.#onApplied)
    this.#fsm.off('restored', this.#onRestored)
    clearTimeout(this.#timer)
    clearTimeout(this.#wakeTimer)
  }

  #schedule(ms: number): void {
    if (this.#stopped || this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#run()
    }, ms)
  }

  async #run(): Promise<void> {
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    try {
      await this.#step()
    } catch (err) {
      this.#log.warn(`node drainer: ${(err as Error).message}; will retry`)
      this.#schedule(RETRY_MS)
    } finally {
      this.#running = false
      if (this.#again) {
        this.#again = false
        this.#schedule(0)
      }
    }
  }

  async #step(): Promise<void> {
    const state = this.#fsm.state
    // The common case, on every plan and client report: no drain, no migration.
    if (this.#migrating.size === 0 && !state.nodesSortedById().some((n) => n.drain)) return
    const view = {
      nodes: () => state.nodesSortedById(),
      job: (id: string) => state.get('jobs', id),
      allocsOfJob: (id: string) => state.allocsOfJob(id),
      allocsOfNode: (id: string) => state.allocsOfNode(id),
      evalsOfJob: (id: string) => state.evalsOfJob(id),
    }
    const d = decideDrains(view, this.#now())
    clearTimeout(this.#wakeTimer)
    if (d.wakeAt !== undefined && !this.#stopped) {
      this.#wakeTimer = setTimeout(() => this.#schedule(0), Math.max(0, d.wakeAt - this.#now()) + 10)
    }
    if (d.migrate.length > 0 || d.evaluate.length > 0) {
      await this.#writer.markForMigration(d.migrate, d.evaluate)
      const nodeOf = (id: string) => state.get('nodes', state.get('allocs', id)?.nodeId ?? '')?.name ?? '?'
      for (const t of d.migrate) {
        this.#log.info(`drain of ${nodeOf(t.allocId)}: allocation ${t.allocId.slice(0, 8)} ${t.transition.force ? 'stopped at the deadline' : 'migrating'}`)
      }
    }
    for (const nodeId of d.complete) {
      await this.#writer.endDrain(nodeId, 'complete', false)
      this.#log.info(`drain of ${state.get('nodes', nodeId)?.name ?? nodeId} complete`)
    }
  }
}
