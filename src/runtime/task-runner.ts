// Runs one task through its driver for the life of its allocation: start,
// wait, and restart in place per the restart policy, recording task events.
import type { JobType, RestartPolicy, TaskEvent, TaskState } from '../structs/index.ts'
import { DriverError, SetupError, type Driver, type ExitResult, type TaskHandle, type TaskStartSpec } from './driver.ts'
import { HealthMonitor, type HealthUpdate } from './health.ts'
import { RestartTracker } from './restart.ts'

const MAX_EVENTS = 20

export interface TaskRunnerOptions {
  driver: Driver
  spec: TaskStartSpec
  policy: RestartPolicy
  jobType: JobType
  /** A handle found at agent start: attach to it instead of starting anew. */
  recovered?: TaskHandle
  /** State reported before an agent restart, to keep restart counts and events. */
  previous?: TaskState
  /** Exit 0 completes the task even in a service job (lifecycle hooks, non-essential tasks). */
  completeOnSuccess?: boolean
  /** Environment added at each start (env_from_var); throws SetupError when it cannot be. */
  resolveEnv?: () => Record<string, string>
  onChange: () => void
  now?: () => number
}

export function describeExit(r: ExitResult): string {
  if (r.oomKilled) return `OOM killed (exit code ${r.exitCode})`
  if (r.error) return r.error
  return r.signal ? `exited with code ${r.exitCode} (signal ${r.signal})` : `exited with code ${r.exitCode}`
}

export class TaskRunner {
  readonly name: string
  readonly #o: TaskRunnerOptions
  readonly #now: () => number
  #state: TaskState
  #handle: TaskHandle | undefined
  #killed = false
  #wakeSleep: (() => void) | undefined
  #done: Promise<void> | undefined
  #monitor: HealthMonitor | undefined
  /** Why the agent stopped the task to restart it (check_restart). */
  #restartReason: string | undefined

  constructor(o: TaskRunnerOptions) {
    this.#o = o
    this.name = o.spec.task.name
    this.#now = o.now ?? Date.now
    this.#handle = o.recovered
    this.#state = o.previous
      ? { ...o.previous, events: [...o.previous.events] }
      : { state: 'pending', failed: false, restarts: 0, events: [] }
    if (o.spec.task.checks && this.#state.health === undefined) this.#state.health = 'unknown'
  }

  get state(): TaskState {
    return this.#state
  }

  get spec(): TaskStartSpec {
    return this.#o.spec
  }

  get handle(): TaskHandle | undefined {
    return this.#handle
  }

  /** Whether run() was called (or the task finished before an agent restart). */
  get launched(): boolean {
    return this.#done !== undefined
  }

  /** Dead, not failed, and its last run exited 0 by itself. */
  get succeeded(): boolean {
    return this.#state.state === 'dead' && !this.#state.failed && this.#state.events.at(-1)?.type === 'Completed'
  }

  /** Starts the run loop; resolves when the task is dead for good. A task that was dead before an agent restart stays so. */
  run(): Promise<void> {
    // The loop starts on a later tick: #done must be set before its first event reaches onChange.
    this.#done ??= this.#state.state === 'dead' ? Promise.resolve() : Promise.resolve().then(() => this.#loop())
    return this.#done
  }

  /** A task that will never run (its dependency cannot be met, the group is stopping): dead at once. */
  skip(type: string, message: string, failed: boolean): void {
    if (this.#done) return
    this.#killed = true
    this.#done = Promise.resolve()
    this.#event(type, message, undefined, { state: 'dead', failed, finishedAt: this.#now() })
  }

  /** Records an event from outside the task's own life (the mesh's upstream listeners). */
  note(type: string, message: string): void {
    this.#event(type, message)
  }

  /** Stops the task (allocation stopped): signal, kill after the timeout, no restart. */
  async kill(reason: string): Promise<void> {
    if (this.#killed) return this.#done
    this.#killed = true
    this.#stopMonitor()
    this.#wakeSleep?.()
    if (this.#handle && this.#state.state !== 'dead') {
      this.#event('Killing', reason)
      await this.#o.driver.stop(this.#handle, this.#o.spec.task.killTimeoutMs).catch(() => undefined)
    }
    await this.#done
    if (this.#state.state !== 'dead') this.#set({ state: 'dead', finishedAt: this.#now() })
  }

  /** Removes the task's container or process leftovers. */
  async destroy(): Promise<void> {
    if (this.#handle) await this.#o.driver.destroy(this.#handle).catch(() => undefined)
  }

  async #loop(): Promise<void> {
    const { driver, spec, policy, jobType } = this.#o
    const tracker = new RestartTracker(policy, jobType, this.#now(), this.#o.completeOnSuccess ?? false)
    if (this.#handle) this.#event('Reattached', `re-attached to ${this.#handle.id.slice(0, 12)}`)
    else this.#event('Received', 'task received by client')
    while (!this.#killed) {
      let exit: ExitResult | undefined
      let unrecoverable = false
      let started = false
      if (!this.#handle || this.#state.state !== 'running') {
        started = true
        try {
          const extra = this.#o.resolveEnv?.()
          this.#handle = await driver.start(extra ? { ...spec, env: { ...spec.env, ...extra } } : spec)
          if (this.#killed) break
          this.#event('Started', `task started by ${driver.name} driver`, undefined, { state: 'running', startedAt: this.#now() })
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err)
          unrecoverable = err instanceof DriverError && !err.recoverable
          this.#event(err instanceof SetupError ? 'Setup Failure' : 'Driver Failure', message)
          exit = { exitCode: -1, oomKilled: false, error: message }
        }
      }
      if (!exit) {
        this.#startMonitor(started)
        exit = await driver.wait(this.#handle!)
        this.#stopMonitor()
      }
      if (this.#killed) break
      if (!unrecoverable) {
        this.#event(exit.oomKilled ? 'OOM Killed' : 'Terminated', describeExit(exit), exit)
      }
      const restartTriggered = this.#restartReason !== undefined
      this.#restartReason = undefined
      const decision = tracker.onExit({ exitCode: exit.exitCode, unrecoverable, restartTriggered }, this.#now())
      if (decision.action === 'restart') {
        this.#event('Restarting', `restarting in ${decision.delayMs / 1000}s (${decision.reason})`, undefined, { state: 'pending', restarts: this.#state.restarts + 1 })
        await this.#sleep(decision.delayMs)
        continue
      }
      const failed = decision.action === 'fail'
      this.#event(failed ? 'Not Restarting' : 'Completed', decision.reason, undefined, { state: 'dead', failed, finishedAt: this.#now() })
      return
    }
    this.#event('Killed', 'task stopped', undefined, { state: 'dead', finishedAt: this.#now() })
  }

  /** Starts the task's health checks (when it has any) against the running task. */
  #startMonitor(fresh: boolean): void {
    const { task } = this.#o.spec
    const handle = this.#handle
    if (!task.checks || !handle || this.#killed) return
    const driver = this.#o.driver
    if (fresh) this.#set({ health: 'unknown' })
    this.#monitor = new HealthMonitor({
      checks: task.checks,
      ...(task.checkRestart ? { checkRestart: task.checkRestart } : {}),
      startedAt: this.#state.startedAt ?? handle.startedAt,
      now: this.#now,
      target: {
        ports: this.#o.spec.ports,
        exec: (command, args, timeoutMs) => driver.exec(handle, command, args, { timeoutMs }),
      },
      onUpdate: (u) => this.#onHealth(u),
    })
    this.#monitor.start()
  }

  #stopMonitor(): void {
    this.#monitor?.stop()
    this.#monitor = undefined
  }

  #onHealth(u: HealthUpdate): void {
    if (this.#killed) return
    const health = u.health !== this.#state.health ? { health: u.health } : undefined
    u.events.forEach((e, i) => this.#event(e.type, e.message, undefined, i === 0 ? health : {}))
    if (health && u.events.length === 0) this.#set(health)
    if (u.restart !== undefined && this.#restartReason === undefined && this.#handle && this.#state.state === 'running') {
      this.#restartReason = u.restart
      this.#stopMonitor()
      this.#event('Restart Signaled', `health check: ${u.restart}`)
      void this.#o.driver.stop(this.#handle, this.#o.spec.task.killTimeoutMs).catch(() => undefined)
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wakeSleep = done
    })
  }

  #set(patch: Partial<TaskState>): void {
    this.#state = { ...this.#state, ...patch }
    this.#o.onChange()
  }

  /** Appends an event, with `patch` applied in the same change (observers never see one without the other). */
  #event(type: string, message: string, exit?: ExitResult, patch: Partial<TaskState> = {}): void {
    const ev: TaskEvent = { type, time: this.#now(), message }
    if (exit) {
      ev.exitCode = exit.exitCode
      if (exit.signal) ev.signal = exit.signal
    }
    this.#set({ ...patch, events: [...this.#state.events, ev].slice(-MAX_EVENTS) })
  }
}
