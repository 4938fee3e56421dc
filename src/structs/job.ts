// A job as Shoal stores it: the validated, normalised form of a job file.
// Objects held in the state store are immutable: replace, never mutate.
import type { ServiceSpec, Upstream } from './service.ts'
import type { ScalingPolicy } from './scaling.ts'

export type JobType = 'service' | 'batch' | 'system'

/** What a port is published for; tcp unless a job asks (as ECS, Swarm and Kubernetes; Nomad publishes both). */
export type PortProtocol = 'tcp' | 'udp' | 'tcp+udp'

export const PORT_PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'tcp+udp']

/** The transport protocols of a port, tcp when it names none. */
export function portProtocols(protocol: PortProtocol | undefined): ('tcp' | 'udp')[] {
  return protocol === 'udp' ? ['udp'] : protocol === 'tcp+udp' ? ['tcp', 'udp'] : ['tcp']
}

export interface PortSpec {
  /** Label the task config and env refer to, e.g. "http". */
  label: string
  /** Container-side port; when absent the container sees the host port. */
  to?: number
  /** Fixed host port; when absent a dynamic one is picked at placement. */
  static?: number
  /** Absent: tcp. */
  protocol?: Exclude<PortProtocol, 'tcp'>
}

export type RestartMode = 'fail' | 'delay'

export interface RestartPolicy {
  /** Restarts allowed within `intervalMs` before the mode applies. */
  attempts: number
  intervalMs: number
  delayMs: number
  mode: RestartMode
}

export type DelayFunction = 'constant' | 'exponential' | 'fibonacci'

/** When a failed allocation is replaced (on any node), as Nomad's reschedule block. */
export interface ReschedulePolicy {
  /** Replacements allowed within `intervalMs` (ignored when unlimited). */
  attempts: number
  intervalMs: number
  /** Wait before the first replacement; grows per `delayFunction` up to `maxDelayMs`. */
  delayMs: number
  delayFunction: DelayFunction
  maxDelayMs: number
  unlimited: boolean
}

export function defaultReschedulePolicy(type: JobType): ReschedulePolicy {
  return type === 'batch'
    ? { attempts: 1, intervalMs: 24 * 3_600_000, delayMs: 5_000, delayFunction: 'constant', maxDelayMs: 0, unlimited: false }
    : { attempts: 0, intervalMs: 0, delayMs: 30_000, delayFunction: 'exponential', maxDelayMs: 3_600_000, unlimited: true }
}

/** What a group's health is judged on during an update: task states only, or also their checks. */
export type HealthCheckMode = 'checks' | 'task_states'
export const HEALTH_CHECK_MODES: readonly HealthCheckMode[] = ['checks', 'task_states']

/**
 * How a new job version replaces a group's allocations, and how an allocation's
 * health is judged (Nomad's update block, with its defaults).
 */
export interface UpdateStrategy {
  /** Allocations replaced at a time; the next batch waits until these are healthy. */
  maxParallel: number
  /** How long an allocation must be running (and its checks passing) to count as healthy. */
  minHealthyTimeMs: number
  /** An allocation not healthy this long after it started is unhealthy. */
  healthyDeadlineMs: number
  /** The deployment fails unless an allocation becomes healthy within this time of the previous progress (0: never). */
  progressDeadlineMs: number
  healthCheck: HealthCheckMode
  /** On failure, register the job's latest stable version again. */
  autoRevert: boolean
  /** New-version allocations placed beside the old ones; the rest roll once they are promoted. */
  canary: number
  /** Promote once every canary is healthy. */
  autoPromote: boolean
  /** Accepted for Nomad compatibility (used by migrations); the rollout waits on health instead. */
  staggerMs: number
}

export function defaultUpdateStrategy(): UpdateStrategy {
  return {
    maxParallel: 1, minHealthyTimeMs: 10_000, healthyDeadlineMs: 5 * 60_000, progressDeadlineMs: 10 * 60_000,
    healthCheck: 'checks', autoRevert: false, canary: 0, autoPromote: false, staggerMs: 30_000,
  }
}

/** How a node drain moves a service group's allocations, as Nomad's migrate block. */
export interface MigratePolicy {
  /** Allocations of the group moving at once. */
  maxParallel: number
  healthCheck: HealthCheckMode
  /** A replacement counts as healthy once it has been so for this long. */
  minHealthyTimeMs: number
  /** A replacement not healthy by then is unhealthy. */
  healthyDeadlineMs: number
}

export const DEFAULT_MIGRATE_POLICY: Readonly<MigratePolicy> = Object.freeze({
  maxParallel: 1, healthCheck: 'checks', minHealthyTimeMs: 10_000, healthyDeadlineMs: 5 * 60_000,
})

/** The group's migrate block: Nomad's defaults when absent (also in jobs stored before it existed). */
export function migratePolicy(group: TaskGroup): MigratePolicy {
  return group.migrate ?? DEFAULT_MIGRATE_POLICY
}

export interface Resources {
  /** CPU in MHz, as Nomad counts it; becomes Docker CPU shares. */
  cpu: number
  /** Memory in MB: what placement reserves, and the hard limit unless memoryMaxMB is set. */
  memoryMB: number
  /** Tasks only: hard memory limit above the reservation (Nomad's memory_max); absent when not set. */
  memoryMaxMB?: number
}

/** A host directory bind-mounted into a docker task. */
export interface VolumeMount {
  hostPath: string
  containerPath: string
  readOnly: boolean
}

export interface DockerTaskConfig {
  image: string
  command?: string
  args: string[]
  /** Port labels of the group network this task publishes. */
  ports: string[]
  /** Host bind mounts; absent when none. */
  volumes?: VolumeMount[]
  /** Enforce the CPU reservation as a hard quota (CFS), not only as shares; absent when false. */
  cpuHardLimit?: boolean
}

export interface ExecTaskConfig {
  command: string
  args: string[]
  /** Enforce the CPU reservation as a hard quota (cgroup v2 cpu.max); absent when false. */
  cpuHardLimit?: boolean
}

/**
 * Placement rules, as in Nomad. Attributes are interpolations of node
 * properties: `${node.name}`, `${node.id}`, `${attr.<key>}`, `${meta.<key>}`.
 */
export type ConstraintOperator =
  | '=' | '!=' | '<' | '<=' | '>' | '>='
  | 'regexp' | 'set_contains' | 'version' | 'is_set' | 'is_not_set'
  | 'distinct_hosts' | 'distinct_property'
export const CONSTRAINT_OPERATORS: readonly ConstraintOperator[] = [
  '=', '!=', '<', '<=', '>', '>=', 'regexp', 'set_contains', 'version', 'is_set', 'is_not_set', 'distinct_hosts', 'distinct_property',
]

/** A hard rule: nodes that break it are never used for the group. */
export interface Constraint {
  /** `${...}` of the node property; "" for distinct_hosts. */
  attribute: string
  operator: ConstraintOperator
  /** Literal or `${...}`; "" for is_set/is_not_set; "true"/"false" for distinct_hosts; the limit for distinct_property. */
  value: string
  /**
   * "job" when the job file declared it at the job level (the validator copies
   * job-level rules into every group): distinct_hosts and distinct_property then
   * count allocations of the whole job instead of the group's.
   */
  scope?: 'job'
}

export type AffinityOperator = Exclude<ConstraintOperator, 'distinct_hosts' | 'distinct_property'>
export const AFFINITY_OPERATORS: readonly AffinityOperator[] = CONSTRAINT_OPERATORS.filter(
  (o): o is AffinityOperator => o !== 'distinct_hosts' && o !== 'distinct_property',
)

/** A soft rule: nodes matching it rank higher (negative weight: lower). */
export interface Affinity {
  attribute: string
  operator: AffinityOperator
  value: string
  /** -100..100, never 0. */
  weight: number
}

export interface SpreadTarget {
  value: string
  /** 0..100; the targets of one spread sum to at most 100. */
  percent: number
}

/** Spread allocations over the values of a node property: evenly, or by target percentages. */
export interface Spread {
  attribute: string
  /** 1..100, relative to the group's other spreads. */
  weight: number
  targets: SpreadTarget[]
}

/** How a health check probes a task. */
export type CheckType = 'http' | 'tcp' | 'command'
export const CHECK_TYPES: readonly CheckType[] = ['http', 'tcp', 'command']

/**
 * A health check of a task. http and tcp checks run from the agent against the
 * allocation's port (hostIp:value); command checks run inside the task.
 */
export interface TaskCheck {
  type: CheckType
  /** http, tcp: label of the group port to probe. */
  port?: string
  /** http: request path (default "/"). */
  path?: string
  /** http: the status that passes; any 2xx when absent. */
  expectedStatus?: number
  /** command: program and arguments run inside the task; exit 0 passes. */
  command?: string
  args?: string[]
  intervalMs: number
  timeoutMs: number
  /** Consecutive failures before the task counts as unhealthy. */
  retries: number
  /** Failures within this time after the task started do not count. */
  startPeriodMs: number
}

/** Restart the task after `limit` consecutive check failures, once `graceMs` after its start have passed. */
export interface CheckRestart {
  limit: number
  graceMs: number
}

/** When a lifecycle task runs relative to the group's main tasks (Nomad's lifecycle block). */
export type LifecycleHook = 'prestart' | 'poststart' | 'poststop'
export const LIFECYCLE_HOOKS: readonly LifecycleHook[] = ['prestart', 'poststart', 'poststop']

export interface TaskLifecycle {
  hook: LifecycleHook
  /** Keeps running beside the main tasks (prestart, poststart) instead of running to completion. */
  sidecar: boolean
}

/** ECS container dependency conditions. */
export type DependencyCondition = 'START' | 'COMPLETE' | 'SUCCESS' | 'HEALTHY'
export const DEPENDENCY_CONDITIONS: readonly DependencyCondition[] = ['START', 'COMPLETE', 'SUCCESS', 'HEALTHY']

/** The task starts only once `task` (of the same group) meets `condition`. */
export interface TaskDependency {
  task: string
  condition: DependencyCondition
}

/** Rotation of a task's output files (Nomad's logs block): at most maxFiles files of maxFileSizeMB each, per stream. */
export interface TaskLogs {
  maxFiles: number
  maxFileSizeMB: number
}

/** Nomad's defaults; a task without a logs block gets them. */
export const DEFAULT_TASK_LOGS: TaskLogs = { maxFiles: 10, maxFileSizeMB: 10 }

interface TaskBase {
  name: string
  env: Record<string, string>
  resources: Resources
  /** Time given to the task between the stop signal and SIGKILL. */
  killTimeoutMs: number
  /** Task-level rules; they apply to the placement of the whole group. */
  constraints?: Constraint[]
  affinities?: Affinity[]
  /** Health checks; absent when none. */
  checks?: TaskCheck[]
  checkRestart?: CheckRestart
  /** Absent: a main task. */
  lifecycle?: TaskLifecycle
  dependsOn?: TaskDependency[]
  /** false: the task may finish or fail without stopping the group. Absent: true. */
  essential?: boolean
  /** Environment variables whose values come from the variables store: name → variable path. */
  envFromVar?: Record<string, string>
  /** Services this task reaches on localhost through the agent's proxy; absent when none. */
  upstreams?: Upstream[]
  /** Log rotation; absent: DEFAULT_TASK_LOGS. */
  logs?: TaskLogs
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
  /** Absent in jobs stored before it existed: the job type's default applies. */
  reschedule?: ReschedulePolicy
  /** The job's and the group's update blocks merged over the defaults; absent when neither was given. */
  update?: UpdateStrategy
  /** Service jobs only; absent: DEFAULT_MIGRATE_POLICY. */
  migrate?: MigratePolicy
  tasks: Task[]
  /** The job's rules (copied in, `scope: 'job'`) followed by the group's own. Absent when none. */
  constraints?: Constraint[]
  affinities?: Affinity[]
  spreads?: Spread[]
  /** Services of the group and its tasks (task-level ones carry `task`); absent when none. */
  services?: ServiceSpec[]
  /** The group's `scaling` block: count bounds and the autoscaling policy. Absent when none. */
  scaling?: ScalingPolicy
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
  /** Its deployment succeeded: auto-revert goes back to the latest stable version. Absent: not (yet) stable. */
  stable?: boolean
  /** Set by `job stop`: the job stays listed but wants nothing running. */
  stop: boolean
  submitTime: number
  createIndex: number
  modifyIndex: number
}

/** The group's update strategy, or the defaults. */
export function updateStrategyOf(group: TaskGroup): UpdateStrategy {
  return group.update ?? defaultUpdateStrategy()
}

/** A task that runs to completion: prestart, poststart (not sidecars) and poststop tasks. */
export function isEphemeralTask(task: Task): boolean {
  return task.lifecycle !== undefined && !task.lifecycle.sidecar
}

export function isEssentialTask(task: Task): boolean {
  return task.essential !== false
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

/** Every constraint on the group's placements: job and group level, then each task's (Nomad merges them). */
export function groupConstraints(group: TaskGroup): Constraint[] {
  return [...(group.constraints ?? []), ...group.tasks.flatMap((t) => t.constraints ?? [])]
}

/** Every affinity of the group's placements: job and group level, then each task's. */
export function groupAffinities(group: TaskGroup): Affinity[] {
  return [...(group.affinities ?? []), ...group.tasks.flatMap((t) => t.affinities ?? [])]
}

/** The spec a job was registered with (what versions are compared on). */
export function specOf(job: Job): JobSpec {
  return { id: job.id, type: job.type, priority: job.priority, groups: job.groups }
}
