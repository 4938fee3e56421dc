// Runs the tasks of one allocation in their order and folds their states into
// the allocation's client status.
//
// Order: prestart tasks first (sidecars keep running, the others must complete
// successfully), then the main tasks, then poststart tasks once the main tasks
// run; poststop tasks once every other task is dead. Within that, a task with
// depends_on starts only when its dependencies meet their conditions (START,
// COMPLETE, SUCCESS, HEALTHY). An essential task that fails, or a long-running
// essential task that exits for good, stops the group (then poststop tasks
// run); a non-essential task may finish or fail on its own. Any essential task
// failed → failed; all dead → complete; the main tasks and sidecars running →
// running.
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { AllocClientUpdate } from '../fsm/commands.ts'
import type { Allocation, ClientStatus, Job, Task, TaskDependency, TaskGroup, TaskState, ServiceHealth } from '../structs/index.ts'
import { isEphemeralTask, isEssentialTask, migratePolicy, updateStrategyOf } from '../structs/index.ts'
import { AllocHealthTracker } from './alloc-health.ts'
import { SetupError, type Driver, type TaskHandle } from './driver.ts'
import { taskEnv } from './env.ts'
import { TaskRunner } from './task-runner.ts'
import { ServiceChecks, type CheckedTask } from './service-checks.ts'

/** How long poststop tasks may run when the allocation is stopped, before they are killed. */
const POSTSTOP_LIMIT_MS = 30_000

export interface AllocRunnerOptions {
  alloc: Allocation
  job: Job
  nodeId: string
  allocsDir: string
  drivers: ReadonlyMap<string, Driver>
  /** Handles found at agent start, by task name. */
  recovered: ReadonlyMap<string, TaskHandle>
  /** The value of a variable of the variables store (env_from_var), or undefined. */
  variable?: (path: string) => string | undefined
  onUpdate: (update: AllocClientUpdate) => void
  /** Network set up around the tasks (the mesh's upstream listeners). */
  network?: AllocNetworkHooks
  /** It replaces an allocation migrating off a draining node: outside a deployment, the migrate block judges its health. */
  migration?: boolean
}

/** What an allocation's network hook is given once the group's namespace exists, before any task starts. */
export interface AllocNetworkContext {
  alloc: Allocation
  group: TaskGroup
  /** A process in the group's shared namespace (docker pause container), when the group has one. */
  netnsPid?: number
  /** Records a task event. */
  note(task: string, type: string, message: string): void
}

export interface AllocNetworkHooks {
  /** Whether the group needs a shared namespace even with a single docker task. */
  wantsGroupNamespace(group: TaskGroup): boolean
  setup(ctx: AllocNetworkContext): Promise<void>
  /** The allocation's tasks are gone (stopped, or all dead): release what setup made. */
  teardown(allocId: string): void
}

type Hook = 'prestart' | 'main' | 'poststart' | 'poststop'

interface Entry {
  runner: TaskRunner
  task: Task
  hook: Hook
  /** depends_on plus the waits the lifecycle hooks imply. */
  waits: TaskDependency[]
}

const hookOf = (t: Task): Hook => t.lifecycle?.hook ?? 'main'

/** Whether `dep` is met by `r` now (true), can never be (a reason), or not yet (false). */
function dependencyMet(dep: TaskDependency, r: TaskRunner): true | false | string {
  const s = r.state
  const dead = s.state === 'dead'
  const name = JSON.stringify(dep.task)
  switch (dep.condition) {
    case 'START':
      if (s.startedAt !== undefined) return true
      return dead ? `task ${name} finished without starting` : false
    case 'COMPLETE':
      return dead
    case 'SUCCESS':
      if (r.succeeded) return true
      return dead ? `task ${name} did not complete successfully` : false
    case 'HEALTHY':
      if (s.health === 'healthy' && s.state === 'running') return true
      return dead ? `task ${name} is dead and will never be healthy` : false
  }
}

export class AllocRunner {
  readonly alloc: Allocation
  readonly allocDir: string
  readonly #o: AllocRunnerOptions
  readonly #entries: Entry[] = []
  #status: ClientStatus = 'pending'
  #description = ''
  #stopping = false
  /** Set once the group's long-running tasks are being stopped (an essential task ended). */
  #ending: string | undefined
  #started: Promise<void> | undefined
  /** While set, task changes are not folded (several are being made at once). */
  #quiet = false
  /** The driver holding the group's shared network namespace, until released. */
  #network: Driver | undefined
  /** Service allocations whose health is not decided yet (see alloc-health.ts). */
  #health: AllocHealthTracker | undefined
  #healthTimer: NodeJS.Timeout | undefined
  /** Checks of the group's services; absent when none has checks. */
  #serviceChecks: ServiceChecks | undefined
  /**
   * False until the network hook's setup is over: a task event noted during
   * setup folds the task states, and no task may start before its upstream
   * listeners exist (it would meet a refused connection).
   */
  #networkReady = false

  constructor(o: AllocRunnerOptions) {
    this.#o = o
    this.alloc = o.alloc
    this.allocDir = join(o.allocsDir, o.alloc.id)
  }

  get clientStatus(): ClientStatus {
    return this.#status
  }

  task(name: string): TaskRunner | undefined {
    return this.#entries.find((e) => e.runner.name === name)?.runner
  }

  get taskNames(): string[] {
    return this.#entries.map((e) => e.runner.name)
  }

  start(): Promise<void> {
    this.#started ??= this.#start()
    return this.#started
  }

  async #start(): Promise<void> {
    const { alloc, job } = this.#o
    const group = job.groups.find((g) => g.name === alloc.group)
    if (!group) {
      this.#report('failed', `group "${alloc.group}" not in job version ${job.version}`)
      return
    }
    if (job.type === 'service' && alloc.deploymentStatus?.healthy === undefined) {
      const strategy = this.#o.migration && alloc.deploymentId === undefined ? migratePolicy(group) : updateStrategyOf(group)
      this.#health = new AllocHealthTracker(strategy, group.tasks, Date.now(), alloc.taskStates, group.services)
    }
    await mkdir(this.allocDir, { recursive: true })
    const missing = group.tasks.find((t) => !this.#o.drivers.has(t.driver))
    if (missing) {
      this.#report('failed', `driver "${missing.driver}" is not available on this node`)
      return
    }
    const { networkMode, netnsPid, setupError } = await this.#createNetwork(group)
    if (this.#stopping) return
    for (const task of group.tasks) {
      const driver = this.#o.drivers.get(task.driver)!
      const runner = new TaskRunner({
        driver, policy: group.restart, jobType: job.type,
        recovered: this.#o.recovered.get(task.name),
        previous: alloc.taskStates[task.name],
        completeOnSuccess: isEphemeralTask(task) || !isEssentialTask(task),
        ...(task.envFromVar ? { resolveEnv: () => this.#varEnv(task.envFromVar!) } : {}),
        onChange: () => this.#onTaskChange(),
        spec: {
          allocId: alloc.id, jobId: alloc.jobId, group: alloc.group, nodeId: this.#o.nodeId, task,
          ports: alloc.resources.ports, env: taskEnv(alloc, task, this.#o.nodeId), allocDir: this.allocDir,
          ...(networkMode !== undefined && task.driver === 'docker' ? { networkMode } : {}),
        },
      })
      this.#entries.push({ runner, task, hook: hookOf(task), waits: [] })
    }
    for (const e of this.#entries) e.waits = this.#waitsOf(e)
    if (group.services?.some((s) => s.checks)) {
      const mains = group.tasks.filter((t) => t.lifecycle === undefined)
      this.#serviceChecks = new ServiceChecks({
        services: group.services, ports: alloc.resources.ports, mainTask: mains.length === 1 ? mains[0]!.name : undefined,
        ...(alloc.serviceHealth ? { previous: alloc.serviceHealth } : {}),
        onChange: () => this.#report(this.#status, this.#description),
      })
    }
    if (setupError !== undefined) {
      // Every task fails with the reason (not with "sibling failed"): fold the states once, after.
      this.#quiet = true
      for (const e of this.#entries) e.runner.skip('Setup Failure', setupError, true)
      this.#quiet = false
      this.#onTaskChange()
      return
    }
    const hooks = this.#o.network
    if (hooks) {
      await hooks.setup({
        alloc, group, ...(netnsPid !== undefined ? { netnsPid } : {}),
        note: (task, type, message) => this.task(task)?.note(type, message),
      }).catch((err: Error) => this.#entries[0]?.runner.note('Network Failure', err.message))
      if (this.#stopping) return
    }
    this.#networkReady = true
    // Tasks found running at agent start are re-attached whatever they wait for.
    for (const e of this.#entries) if (this.#o.recovered.has(e.task.name)) void e.runner.run()
    this.#advance()
    this.#onTaskChange()
  }

  /**
   * Two or more docker tasks share one network namespace (a pause container that
   * publishes the group's ports), as the containers of an ECS task do; so does
   * one docker task when the network hook asks (upstream listeners live there).
   */
  async #createNetwork(group: TaskGroup): Promise<{ networkMode?: string; netnsPid?: number; setupError?: string }> {
    const docker = group.tasks.filter((t) => t.driver === 'docker')
    const driver = this.#o.drivers.get('docker')
    const wanted = docker.length >= 2 || (docker.length === 1 && this.#o.network?.wantsGroupNamespace(group) === true)
    if (!wanted || !driver?.createNetwork) return {}
    const { alloc } = this.#o
    const labels = new Set(docker.flatMap((t) => (t.driver === 'docker' ? t.config.ports : [])))
    const first = docker[0]!
    try {
      const net = await driver.createNetwork({
        allocId: alloc.id, jobId: alloc.jobId, group: alloc.group, nodeId: this.#o.nodeId,
        ports: alloc.resources.ports.filter((p) => labels.has(p.label)),
        image: first.driver === 'docker' ? first.config.image : '',
      })
      this.#network = driver
      if (this.#stopping) await this.#releaseNetwork()
      return { networkMode: net.networkMode, ...(net.pid !== undefined ? { netnsPid: net.pid } : {}) }
    } catch (err) {
      return { setupError: `shared network: ${err instanceof Error ? err.message : String(err)}` }
    }
  }

  async #releaseNetwork(): Promise<void> {
    this.#o.network?.teardown(this.alloc.id)
    const driver = this.#network
    this.#network = undefined
    await driver?.destroyNetwork?.(this.alloc.id).catch(() => undefined)
  }

  /** Stops every task (poststop tasks run after the others) and removes what they left behind. */
  async stop(reason: string): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#healthTimer)
    this.#serviceChecks?.stop()
    await this.#started?.catch(() => undefined)
    const [poststop, others] = partition(this.#entries, (e) => e.hook === 'poststop')
    await Promise.all(others.map((e) => this.#end(e, reason)))
    const done = Promise.all(poststop.map((e) => e.runner.run()))
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, POSTSTOP_LIMIT_MS)))
    await Promise.race([done, limit])
    clearTimeout(timer)
    await Promise.all(poststop.map((e) => this.#end(e, reason)))
    await Promise.all(this.#entries.map((e) => e.runner.destroy()))
    await this.#releaseNetwork()
    await rm(this.allocDir, { recursive: true, force: true })
    if (this.#status !== 'failed') this.#report('complete', reason)
  }

  /** env_from_var, read from the variables store at each start. */
  #varEnv(spec: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {}
    for (const [name, path] of Object.entries(spec)) {
      const value = this.#o.variable?.(path)
      if (value === undefined) throw new SetupError(`env_from_var ${name}: variable "${path}" not found`)
      env[name] = value
    }
    return env
  }

  /** Kills a launched task; marks one that never started as dead. */
  #end(e: Entry, reason: string): Promise<void> {
    if (!e.runner.launched) {
      e.runner.skip('Killed', `task not started: ${reason}`, false)
      return Promise.resolve()
    }
    return e.runner.kill(reason)
  }

  #waitsOf(e: Entry): TaskDependency[] {
    const waits = [...(e.task.dependsOn ?? [])]
    for (const other of this.#entries) {
      if (other === e) continue
      if (e.hook === 'main' && other.hook === 'prestart') {
        waits.push({ task: other.task.name, condition: other.task.lifecycle?.sidecar ? 'START' : 'SUCCESS' })
      } else if (e.hook === 'poststart' && other.hook === 'main') {
        waits.push({ task: other.task.name, condition: 'START' })
      }
    }
    return waits
  }

  /** Starts the tasks whose waits are over; gives up on those whose waits never will be. */
  #advance(): void {
    if (this.#stopping || !this.#networkReady) return
    for (const e of this.#entries) {
      if (e.runner.launched) continue
      if (e.hook === 'poststop') {
        if (this.#entries.every((x) => x.hook === 'poststop' || x.runner.state.state === 'dead')) void e.runner.run()
        continue
      }
      if (this.#ending !== undefined) {
        e.runner.skip('Killed', `task not started: ${this.#ending}`, false)
        continue
      }
      let ready = true
      for (const dep of e.waits) {
        const other = this.task(dep.task)
        if (!other) continue
        const met = dependencyMet(dep, other)
        if (typeof met === 'string') {
          e.runner.skip('Dependency Failed', `waited for task "${dep.task}" (${dep.condition}): ${met.replace(/^task "[^"]+" /, '')}`, isEssentialTask(e.task))
          ready = false
          break
        }
        if (!met) ready = false
      }
      if (ready && !e.runner.launched) void e.runner.run()
    }
  }

  #onTaskChange(): void {
    if (this.#entries.length === 0 || this.#quiet) return
    // An essential task failed, or a long-running essential task ended, or every main task ended: stop the rest.
    if (!this.#stopping && this.#ending === undefined) {
      const failed = this.#entries.find((e) => e.runner.state.failed && isEssentialTask(e.task))
      const ended = this.#entries.find((e) => e.runner.state.state === 'dead' && e.hook !== 'poststop' && !isEphemeralTask(e.task) && isEssentialTask(e.task))
      const mains = this.#entries.filter((e) => e.hook === 'main')
      if (failed) this.#ending = `sibling task "${failed.task.name}" failed`
      else if (ended) this.#ending = `essential task "${ended.task.name}" finished`
      else if (mains.every((e) => e.runner.state.state === 'dead')) this.#ending = 'the main tasks finished'
      if (this.#ending !== undefined) {
        const reason = this.#ending
        for (const e of this.#entries) {
          if (e.hook === 'poststop' || e.runner.state.state === 'dead') continue
          if (e.runner.launched) void e.runner.kill(reason)
          else e.runner.skip('Killed', `task not started: ${reason}`, false)
        }
      }
    }
    this.#advance()

    const states = this.#entries.map((e) => e.runner.state)
    let status: ClientStatus
    let description = ''
    const failed = this.#entries.find((e) => e.runner.state.failed && isEssentialTask(e.task))
    const longRunning = this.#entries.filter((e) => e.hook !== 'poststop' && !isEphemeralTask(e.task))
    if (failed) {
      status = 'failed'
      description = `task "${failed.task.name}" failed`
    } else if (states.every((s) => s.state === 'dead')) {
      status = 'complete'
      description = this.#stopping ? 'allocation stopped' : 'all tasks finished'
    } else if (
      this.#ending === undefined &&
      longRunning.every((e) => e.runner.state.state === 'running' || (e.runner.state.state === 'dead' && !(e.runner.state.failed && isEssentialTask(e.task)))) &&
      longRunning.some((e) => e.runner.state.state === 'running')
    ) {
      status = 'running'
      description = 'tasks are running'
    } else {
      status = 'pending'
      description = this.#ending !== undefined || this.#stopping ? 'tasks are stopping' : 'tasks are starting'
    }
    // Nothing runs in the shared namespace any more: free its ports now.
    if (states.every((s) => s.state === 'dead') && !this.#stopping) void this.#releaseNetwork()
    this.#report(status, description)
    if (!this.#stopping) this.#serviceChecks?.sync(this.#checkedTasks(), status === 'running')
  }

  #checkedTasks(): Map<string, CheckedTask> {
    return new Map(this.#entries.map((e) => [e.task.name, {
      state: e.runner.state.state, startedAt: e.runner.state.startedAt, handle: e.runner.handle, driver: this.#o.drivers.get(e.task.driver)!,
      longRunning: e.hook !== 'poststop' && !isEphemeralTask(e.task),
    }]))
  }

  #report(status: ClientStatus, description: string): void {
    this.#status = status
    this.#description = description
    const taskStates: Record<string, TaskState> = {}
    for (const e of this.#entries) taskStates[e.runner.name] = e.runner.state
    const serviceHealth = this.#serviceChecks?.health
    const verdict = this.#observeHealth(taskStates, serviceHealth)
    this.#o.onUpdate({
      allocId: this.alloc.id, clientStatus: status, clientDescription: this.#description, taskStates,
      ...(serviceHealth ? { serviceHealth } : {}),
      // Sent with every later report too: a batch keeps only an allocation's last update.
      ...(verdict ? { deploymentStatus: { healthy: verdict.healthy, timestamp: verdict.time } } : {}),
    })
  }

  /** Folds the task states into the health verdict; looks again when min_healthy_time or the deadline ends. */
  #observeHealth(taskStates: Record<string, TaskState>, services: Record<string, ServiceHealth> | undefined) {
    const tracker = this.#health
    if (!tracker) return undefined
    if (tracker.verdict || this.#stopping) return tracker.verdict
    const seen = tracker.observe(taskStates, Date.now(), services)
    clearTimeout(this.#healthTimer)
    if (seen.recheckAt !== undefined) {
      this.#healthTimer = setTimeout(() => this.#report(this.#status, this.#description), Math.max(0, seen.recheckAt - Date.now()))
      this.#healthTimer.unref()
    }
    return seen.verdict
  }
}

function partition<T>(items: readonly T[], pred: (x: T) => boolean): [T[], T[]] {
  const yes: T[] = []
  const no: T[] = []
  for (const x of items) (pred(x) ? yes : no).push(x)
  return [yes, no]
}
