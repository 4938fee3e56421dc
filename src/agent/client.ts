// The client half of an agent: runs the allocations the leader placed on this
// node and reports what happens to them, in batches.
import { join } from 'node:path'
import type { AllocClientUpdate } from '../fsm/commands.ts'
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import { jobVersionKey } from '../fsm/state.ts'
import { AllocRunner, type AllocNetworkHooks } from '../runtime/alloc-runner.ts'
import type { Driver, TaskHandle } from '../runtime/driver.ts'
import type { Allocation } from '../structs/index.ts'
import { isTerminal } from '../structs/index.ts'
import type { Logger } from './leader.ts'

const UPDATE_RETRY_MS = 1_000

/** The writes a client needs; on the leader they apply locally, elsewhere they are forwarded. */
export interface ClientWriter {
  updateAllocs(updates: AllocClientUpdate[]): Promise<unknown>
}

export interface ClientOptions {
  fsm: Fsm
  writer: ClientWriter
  nodeId: string
  dataDir: string
  drivers: readonly Driver[]
  log: Logger
  /** Network set up around each allocation's tasks (the mesh's upstream listeners). */
  network?: AllocNetworkHooks
  /**
   * Resolves once the local state holds every write the cluster acknowledged
   * before the call (a read barrier went through). A restarted agent rebuilds
   * its state from its own log, which can lack the last entries: until this
   * resolves, tasks of allocations the state does not know keep running.
   * Without it they are removed at start.
   */
  stateCurrent?: () => Promise<void>
}

export class Client {
  readonly #o: ClientOptions
  readonly #drivers: Map<string, Driver>
  readonly #runners = new Map<string, AllocRunner>()
  readonly #stopping = new Map<string, Promise<void>>()
  readonly #pending = new Map<string, AllocClientUpdate>()
  #recovered = new Map<string, Map<string, TaskHandle>>()
  /** Found running at start for allocations the state did not know yet; kept until stateCurrent. */
  readonly #unclaimed = new Map<string, Map<string, TaskHandle>>()
  /** Network namespaces found at start for allocations the state did not know yet: allocation id → its driver. */
  readonly #unclaimedNetworks = new Map<string, Driver>()
  #flushTimer: NodeJS.Timeout | NodeJS.Immediate | undefined
  #flushing: Promise<void> = Promise.resolve()
  /** A report is being written: updates queued meanwhile go out together right after it. */
  #inFlight = false
  #closed = false
  readonly #onApplied = (e: AppliedEvent) => {
    for (const c of e.changes) if (c.table === 'allocs' && c.value?.nodeId === this.#o.nodeId) this.#sync(c.value)
  }

  constructor(o: ClientOptions) {
    this.#o = o
    this.#drivers = new Map(o.drivers.map((d) => [d.name, d]))
  }

  get allocsDir(): string {
    return join(this.#o.dataDir, 'allocs')
  }

  runner(allocId: string): AllocRunner | undefined {
    return this.#runners.get(allocId)
  }

  /**
   * Re-attaches to tasks that kept running while the agent was down, stops the
   * ones the state no longer wants, then starts following the state.
   */
  async start(): Promise<void> {
    this.#closed = false
    const { fsm, nodeId, log } = this.#o
    for (const driver of this.#o.drivers) {
      const found = await driver.recover(nodeId).catch((err: Error) => {
        log.warn(`recovery through the ${driver.name} driver failed: ${err.message}`)
        return []
      })
      for (const r of found) {
        const alloc = fsm.state.get('allocs', r.allocId)
        const wanted = alloc !== undefined && alloc.desiredStatus === 'run' && !isTerminal(alloc)
        const keep = wanted ? this.#recovered : !alloc && this.#o.stateCurrent ? this.#unclaimed : null
        if (keep) {
          let byTask = keep.get(r.allocId)
          if (!byTask) keep.set(r.allocId, (byTask = new Map()))
          byTask.set(r.taskName, r.handle)
        } else {
          await this.#removeLeftover(r.handle)
        }
      }
    }
    // Shared network namespaces (docker pause containers): wanted ones are re-attached by their
    // allocation's runner, the others removed so that none is orphaned.
    for (const driver of this.#o.drivers) {
      if (!driver.recoverNetworks || !driver.destroyNetwork) continue
      const ids = await driver.recoverNetworks(nodeId).catch((err: Error) => {
        log.warn(`recovery of network namespaces through the ${driver.name} driver failed: ${err.message}`)
        return []
      })
      for (const id of ids) {
        const alloc = fsm.state.get('allocs', id)
        if (alloc && alloc.desiredStatus === 'run' && !isTerminal(alloc)) continue
        if (!alloc && this.#o.stateCurrent) this.#unclaimedNetworks.set(id, driver)
        else await this.#removeLeftoverNetwork(driver, id)
      }
    }
    const reattached = [...this.#recovered.values()].reduce((n, byTask) => n + byTask.size, 0)
    if (reattached > 0) log.info(`re-attaching to ${reattached} running task(s) of ${this.#recovered.size} allocation(s)`)
    fsm.on('applied', this.#onApplied)
    for (const alloc of fsm.state.allocsOfNode(nodeId)) this.#sync(alloc)
    // The state may have stopped an allocation (e.g. declared it lost while this agent was
    // down) after its tasks were found above: no runner took them, so nothing else would.
    const orphans = [...this.#recovered].filter(([allocId]) => !this.#runners.has(allocId))
    this.#recovered = new Map()
    for (const [, byTask] of orphans) for (const handle of byTask.values()) await this.#removeLeftover(handle)
    if ((this.#unclaimed.size > 0 || this.#unclaimedNetworks.size > 0) && this.#o.stateCurrent) {
      log.info(`keeping ${this.#unclaimed.size} allocation(s) the state does not know yet until it has caught up with the cluster`)
      this.#o.stateCurrent().then(() => this.#removeUnclaimed(), (err: Error) => log.warn(`unknown allocations kept: ${err.message}`))
    }
  }

  /** The state is current: what no allocation claimed by now is not wanted. */
  async #removeUnclaimed(): Promise<void> {
    if (this.#closed) return
    for (const [allocId, byTask] of [...this.#unclaimed]) {
      this.#unclaimed.delete(allocId)
      for (const handle of byTask.values()) await this.#removeLeftover(handle)
    }
    for (const [id, driver] of [...this.#unclaimedNetworks]) {
      this.#unclaimedNetworks.delete(id)
      const alloc = this.#o.fsm.state.get('allocs', id)
      if (!alloc || alloc.desiredStatus !== 'run' || isTerminal(alloc)) await this.#removeLeftoverNetwork(driver, id)
    }
  }

  async #removeLeftoverNetwork(driver: Driver, allocId: string): Promise<void> {
    this.#o.log.info(`removing leftover network namespace of allocation ${allocId.slice(0, 8)}: not wanted any more`)
    await driver.destroyNetwork?.(allocId).catch(() => undefined)
  }

  async #removeLeftover(handle: TaskHandle): Promise<void> {
    const driver = this.#drivers.get(handle.driver)
    if (!driver) return
    this.#o.log.info(`removing leftover task ${handle.taskName} of allocation ${handle.allocId.slice(0, 8)}: not wanted any more`)
    await driver.stop(handle, 5_000).catch(() => undefined)
    await driver.destroy(handle).catch(() => undefined)
  }

  /** Stops following the state; tasks keep running (an agent restart re-attaches). */
  async close(): Promise<void> {
    this.#closed = true
    this.#o.fsm.off('applied', this.#onApplied)
    this.#cancelFlush()
    await this.#flush()
  }

  /** Stops every allocation of this node (agent asked to drain on exit). */
  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.#runners.values()].map((r) => this.#stopRunner(r, reason)))
  }

  #sync(alloc: Allocation): void {
    if (this.#closed) return
    // The state caught up with an allocation whose tasks were found running at start:
    // a runner takes them, or they go.
    const unclaimed = this.#unclaimed.get(alloc.id)
    if (unclaimed) {
      this.#unclaimed.delete(alloc.id)
      this.#unclaimedNetworks.delete(alloc.id)
    }
    this.#syncRunner(alloc, unclaimed)
    if (unclaimed && !this.#runners.has(alloc.id)) for (const handle of unclaimed.values()) void this.#removeLeftover(handle)
  }

  /** `adopted`: tasks found running for the allocation after start (see #unclaimed). */
  #syncRunner(alloc: Allocation, adopted?: Map<string, TaskHandle>): void {
    const runner = this.#runners.get(alloc.id)
    if (alloc.desiredStatus === 'stop') {
      if (runner) void this.#stopRunner(runner, alloc.desiredDescription || 'allocation stopped')
      else if (!isTerminal(alloc) && !this.#stopping.has(alloc.id)) {
        this.#queue({ allocId: alloc.id, clientStatus: 'complete', clientDescription: 'stopped before it started', taskStates: alloc.taskStates })
      }
      return
    }
    if (runner || isTerminal(alloc) || this.#stopping.has(alloc.id)) return
    const job = this.#o.fsm.state.get('jobVersions', jobVersionKey(alloc.jobId, alloc.jobVersion))
    if (!job) {
      this.#queue({ allocId: alloc.id, clientStatus: 'failed', clientDescription: `job ${alloc.jobId} version ${alloc.jobVersion} not found`, taskStates: {} })
      return
    }
    const r = new AllocRunner({
      alloc, job, nodeId: this.#o.nodeId, allocsDir: this.allocsDir, drivers: this.#drivers,
      recovered: adopted ?? this.#recovered.get(alloc.id) ?? new Map(), onUpdate: (u) => this.#queue(u),
      variable: (path) => this.#o.fsm.state.get('vars', path)?.value,
      ...(this.#o.network ? { network: this.#o.network } : {}),
      migration: alloc.previousAllocId !== undefined && this.#o.fsm.state.get('allocs', alloc.previousAllocId)?.desiredTransition?.migrate === true,
    })
    this.#runners.set(alloc.id, r)
    r.start().catch((err: Error) => {
      this.#o.log.warn(`allocation ${alloc.id.slice(0, 8)} failed to start: ${err.message}`)
      this.#queue({ allocId: alloc.id, clientStatus: 'failed', clientDescription: err.message, taskStates: {} })
    })
  }

  #stopRunner(r: AllocRunner, reason: string): Promise<void> {
    const existing = this.#stopping.get(r.alloc.id)
    if (existing) return existing
    const p = r.stop(reason)
      .catch((err: Error) => this.#o.log.warn(`stopping allocation ${r.alloc.id.slice(0, 8)}: ${err.message}`))
      .finally(() => {
        this.#runners.delete(r.alloc.id)
        this.#stopping.delete(r.alloc.id)
      })
    this.#stopping.set(r.alloc.id, p)
    return p
  }

  /**
   * Reports go out at once when none is being written (the user waits for "running"),
   * else together as soon as the one in flight is done: one Raft write per batch, and
   * batches grow with the load instead of waiting a fixed delay.
   */
  #queue(update: AllocClientUpdate): void {
    this.#pending.set(update.allocId, update)
    this.#scheduleFlush()
  }

  #scheduleFlush(): void {
    if (this.#flushTimer || this.#inFlight || this.#closed) return
    // setImmediate: the updates of one burst of events (several tasks at once) share a write.
    this.#flushTimer = setImmediate(() => {
      this.#flushTimer = undefined
      void this.#flush()
    })
  }

  #cancelFlush(): void {
    clearImmediate(this.#flushTimer as NodeJS.Immediate)
    clearTimeout(this.#flushTimer as NodeJS.Timeout)
    this.#flushTimer = undefined
  }

  #flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pending.size === 0) return
      const batch = [...this.#pending.values()]
      this.#pending.clear()
      this.#inFlight = true
      try {
        await this.#o.writer.updateAllocs(batch)
        this.#inFlight = false
        if (this.#pending.size > 0) this.#scheduleFlush()
      } catch (err) {
        this.#inFlight = false
        this.#o.log.warn(`reporting ${batch.length} allocation update(s) failed, will retry: ${(err as Error).message}`)
        for (const u of batch) if (!this.#pending.has(u.allocId)) this.#pending.set(u.allocId, u)
        if (!this.#closed) {
          this.#cancelFlush()
          this.#flushTimer = setTimeout(() => {
            this.#flushTimer = undefined
            void this.#flush()
          }, UPDATE_RETRY_MS)
        }
      }
    })
    return this.#flushing
  }
}
