// A job as Shoal stores it: the validated, normalised form of a job file.
// Objects held in the state store are immutable: replace, never mutate.

export type JobType = 'service' | 'batch' | 'system'

export interface PortSpec {
  /** Label the task config and env refer to, e.g. "http". */
  label: string
  /** Container-side port; when absent the container sees the host port. */
  to?: number
  /** Fixed host port; when absent a dynamic one is picked at placement. */
  static?: number
}

export type RestartMode = 'fail' | 'delay'

export interface RestartPolicy {
  /** Restarts allowed within `intervalMs` before the mode applies. */
  attempts: number
  intervalMs: number
  delayMs: number
  mode: RestartMode
}

export interface Resources {
  /** CPU in MHz, as Nomad counts it; becomes Docker CPU shares. */
  cpu: number
  /** Hard memory limit in MB. */
  memoryMB: number
}

export interface DockerTaskConfig {
  image: string
  command?: string
  args: string[]
  /** Port labels of the group network this task publishes. */
  ports: string[]
}

export interface ExecTaskConfig {
  command: string
  args: string[]
}

interface TaskBase {
  name: string
  env: Record<string, string>
  resources: Resources
  /** Time given to the task between the stop signal and SIGKILL. */
  killTimeoutMs: number
}

export type Task =
  | (TaskBase & { driver: 'docker'; config: DockerTaskConfig })
  | (TaskBase & { driver: 'exec'; config: ExecTaskConfig })

export type DriverName = Task['driver']
export const DRIVER_NAMES: readonly DriverName[] = ['docker', 'exec']

export interface TaskGroup {
  name: string
  count: number
  ports: PortSpec[]
  restart: RestartPolicy
  tasks: Task[]
}

export interface JobSpec {
  id: string
  type: JobType
  priority: number
  groups: TaskGroup[]
}

/** Derived from the job and its allocations by the API; never stored. */
export type JobStatus = 'pending' | 'running' | 'dead'

/** A registered job: the spec plus what the cluster stamps on it. */
export interface Job extends JobSpec {
  version: number
  /** Set by `job stop`: the job stays listed but wants nothing running. */
  stop: boolean
  submitTime: number
  createIndex: number
  modifyIndex: number
}

export function groupResources(group: TaskGroup): Resources {
  let cpu = 0
  let memoryMB = 0
  for (const t of group.tasks) {
    cpu += t.resources.cpu
    memoryMB += t.resources.memoryMB
  }
  return { cpu, memoryMB }
}
