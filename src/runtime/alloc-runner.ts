// Runs the tasks of one allocation and folds their states into the
// allocation's client status: any task failed → failed (the others are
// stopped); all finished → complete; all running → running.
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { AllocClientUpdate } from '../fsm/commands.ts'
import type { Allocation, ClientStatus, Job, TaskState } from '../structs/index.ts'
import type { Driver, TaskHandle } from './driver.ts'
import { taskEnv } from './env.ts'
import { TaskRunner } from './task-runner.ts'

export interface AllocRunnerOptions {
  alloc: Allocation
  job: Job
  nodeId: string
  allocsDir: string
  drivers: ReadonlyMap<string, Driver>
  /** Handles found at agent start, by task name. */
  recovered: ReadonlyMap<string, TaskHandle>
  onUpdate: (update: AllocClientUpdate) => void
}

export class AllocRunner {
  readonly alloc: Allocation
  readonly allocDir: string
  readonly #o: AllocRunnerOptions
  readonly #tasks: TaskRunner[] = []
  #status: ClientStatus = 'pending'
  #description = ''
  #stopping = false

  constructor(o: AllocRunnerOptions) {
    this.#o = o
    this.alloc = o.alloc
    this.allocDir = join(o.allocsDir, o.alloc.id)
  }

  get clientStatus(): ClientStatus {
    return this.#status
  }

  task(name: string): TaskRunner | undefined {
    return this.#tasks.find((t) => t.name === name)
  }

  get taskNames(): string[] {
    return this.#tasks.map((t) => t.name)
  }

  async start(): Promise<void> {
    const { alloc, job } = this.#o
    const group = job.groups.find((g) => g.name === alloc.group)
    if (!group) {
      this.#report('failed', `group "${alloc.group}" not in job version ${job.version}`)
      return
    }
    await mkdir(this.allocDir, { recursive: true })
    for (const task of group.tasks) {
      const driver = this.#o.drivers.get(task.driver)
      if (!driver) {
        this.#report('failed', `driver "${task.driver}" is not available on this node`)
        return
      }
      this.#tasks.push(new TaskRunner({
        driver, policy: group.restart, jobType: job.type,
        recovered: this.#o.recovered.get(task.name),
        previous: alloc.taskStates[task.name],
        onChange: () => this.#onTaskChange(),
        spec: {
          allocId: alloc.id, jobId: alloc.jobId, group: alloc.group, nodeId: this.#o.nodeId, task,
          ports: alloc.resources.ports, env: taskEnv(alloc, task, this.#o.nodeId), allocDir: this.allocDir,
        },
      }))
    }
    for (const t of this.#tasks) void t.run()
  }

  /** Stops every task and removes what they left behind. */
  async stop(reason: string): Promise<void> {
    this.#stopping = true
    await Promise.all(this.#tasks.map((t) => t.kill(reason)))
    await Promise.all(this.#tasks.map((t) => t.destroy()))
    await rm(this.allocDir, { recursive: true, force: true })
    if (this.#status !== 'failed') this.#report('complete', reason)
  }

  #onTaskChange(): void {
    const states = this.#tasks.map((t) => t.state)
    let status: ClientStatus
    let description = ''
    const failed = this.#tasks.find((t) => t.state.failed)
    if (failed) {
      status = 'failed'
      description = `task "${failed.name}" failed`
      if (!this.#stopping) {
        // One task failing fails the allocation: stop its siblings.
        for (const t of this.#tasks) if (t !== failed) void t.kill(`sibling task "${failed.name}" failed`)
      }
    } else if (states.every((s) => s.state === 'dead')) {
      status = 'complete'
      description = this.#stopping ? 'allocation stopped' : 'all tasks finished'
    } else if (states.every((s) => s.state === 'running')) {
      status = 'running'
      description = 'tasks are running'
    } else {
      status = 'pending'
      description = 'tasks are starting'
    }
    this.#report(status, description)
  }

  #report(status: ClientStatus, description: string): void {
    this.#status = status
    this.#description = description
    const taskStates: Record<string, TaskState> = {}
    for (const t of this.#tasks) taskStates[t.name] = t.state
    this.#o.onUpdate({ allocId: this.alloc.id, clientStatus: status, clientDescription: this.#description, taskStates })
  }
}
