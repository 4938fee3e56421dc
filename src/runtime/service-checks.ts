// The checks of an allocation's services: http/tcp probes against the
// allocation's host port, command probes inside the service's task. A service's
// checks start when what it registers runs (its task, or the allocation's
// long-running tasks) and start over when that restarts; results fold into
// passing / critical / unknown per service, reported with the allocation.
import type { AllocatedPort, ServiceHealth, ServiceSpec, ServiceStatus, TaskHealth } from '../structs/index.ts'
import type { Driver, TaskHandle } from './driver.ts'
import { HealthMonitor, type HealthUpdate } from './health.ts'

/** What the checks need of a task of the allocation. */
export interface CheckedTask {
  state: 'pending' | 'running' | 'dead'
  startedAt: number | undefined
  handle: TaskHandle | undefined
  driver: Driver
  /** Main tasks and sidecars: what a group-level service's run is made of (hooks that finish do not restart its checks). */
  longRunning: boolean
}

export interface ServiceChecksOptions {
  services: readonly ServiceSpec[]
  ports: readonly AllocatedPort[]
  /** The task command checks of a group-level service run in (the group's only main task). */
  mainTask: string | undefined
  /** Health reported before an agent restart: kept until the checks say otherwise. */
  previous?: Record<string, ServiceHealth>
  onChange: () => void
  now?: () => number
}

const STATUS: Record<TaskHealth, ServiceStatus> = { healthy: 'passing', unhealthy: 'critical', unknown: 'unknown' }

interface Entry {
  spec: ServiceSpec
  /** Identifies the run being checked (start times); a new one restarts the checks. */
  run: string | undefined
  monitor: HealthMonitor | undefined
  /** Whether checks ran in this runner before (then a new run starts from unknown). */
  started: boolean
  health: ServiceHealth
  /** What the last probe that changed a check's result saw. */
  lastOutput?: string
}

export class ServiceChecks {
  readonly #o: ServiceChecksOptions
  readonly #entries: Entry[]

  constructor(o: ServiceChecksOptions) {
    this.#o = o
    this.#entries = o.services.filter((s) => s.checks).map((spec) => ({
      spec, run: undefined, monitor: undefined, started: false, health: o.previous?.[spec.name] ?? { status: 'unknown' },
    }))
  }

  /** Health of each checked service; undefined when the allocation has none. */
  get health(): Record<string, ServiceHealth> | undefined {
    if (this.#entries.length === 0) return undefined
    return Object.fromEntries(this.#entries.map((e) => [e.spec.name, e.health]))
  }

  /**
   * Follows the tasks: starts a service's checks when what it registers runs,
   * restarts them when that restarted, stops them when it stops.
   * `running`: the allocation's long-running tasks all run.
   */
  sync(tasks: ReadonlyMap<string, CheckedTask>, running: boolean): void {
    for (const e of this.#entries) {
      const run = this.#runOf(e.spec, tasks, running)
      if (run === e.run) continue
      e.run = run
      e.monitor?.stop()
      e.monitor = undefined
      if (run === undefined) continue
      // A restart starts from unknown; the first run after an agent restart keeps what was reported.
      e.lastOutput = undefined
      if (e.started) this.#set(e, { status: 'unknown' })
      e.started = true
      e.monitor = this.#monitor(e, tasks)
      e.monitor.start()
    }
  }

  stop(): void {
    for (const e of this.#entries) {
      e.monitor?.stop()
      e.monitor = undefined
      e.run = undefined
    }
  }

  #runOf(spec: ServiceSpec, tasks: ReadonlyMap<string, CheckedTask>, running: boolean): string | undefined {
    if (spec.task !== undefined) {
      const t = tasks.get(spec.task)
      return t?.state === 'running' && t.startedAt !== undefined ? String(t.startedAt) : undefined
    }
    if (!running) return undefined
    return [...tasks.values()].filter((t) => t.longRunning).map((t) => (t.state === 'running' ? t.startedAt ?? 0 : '-')).join(',')
  }

  #monitor(e: Entry, tasks: ReadonlyMap<string, CheckedTask>): HealthMonitor {
    const execIn = e.spec.task ?? this.#o.mainTask
    const now = this.#o.now ?? Date.now
    return new HealthMonitor({
      checks: e.spec.checks ?? [],
      startedAt: now(),
      now,
      target: {
        ports: this.#o.ports,
        exec: (command, args, timeoutMs) => {
          const t = execIn === undefined ? undefined : tasks.get(execIn)
          if (!t?.handle) return Promise.reject(new Error(`task ${JSON.stringify(execIn)} is not running`))
          return t.driver.exec(t.handle, command, args, { timeoutMs })
        },
      },
      onUpdate: (u) => this.#onUpdate(e, u),
    })
  }

  #onUpdate(e: Entry, u: HealthUpdate): void {
    if (e.monitor === undefined) return
    const seen = u.events.at(-1)?.message
    if (seen !== undefined) e.lastOutput = seen
    // Until the checks decide (a pass, or `retries` failures) the last status stands.
    if (u.health === 'unknown' && e.health.status !== 'unknown') return
    const output = e.lastOutput ?? e.health.output
    this.#set(e, { status: STATUS[u.health], ...(output !== undefined ? { output } : {}) })
  }

  #set(e: Entry, health: ServiceHealth): void {
    if (health.status === e.health.status && health.output === e.health.output) return
    e.health = health
    this.#o.onChange()
  }
}
