import type { PortProtocol, Resources } from './job.ts'
import type { ServiceHealth } from './service.ts'

export type DesiredStatus = 'run' | 'stop'
export type ClientStatus = 'pending' | 'running' | 'complete' | 'failed' | 'lost'

export const TERMINAL_CLIENT_STATUSES: ReadonlySet<ClientStatus> = new Set(['complete', 'failed', 'lost'])

export interface AllocatedPort {
  label: string
  /** Host port, on the node's advertised address. */
  value: number
  /** Container-side port (equals value when the spec has no `to`). */
  to: number
  hostIp: string
  /** Absent: tcp (see PortSpec). */
  protocol?: Exclude<PortProtocol, 'tcp'>
}

export interface AllocatedResources extends Resources {
  ports: AllocatedPort[]
}

export type TaskLifecycleState = 'pending' | 'running' | 'dead'

export interface TaskEvent {
  type: string
  time: number
  message: string
  exitCode?: number
  signal?: number
}

/** Folded from the task's checks: unknown until a check passes or fails `retries` times. */
export type TaskHealth = 'unknown' | 'healthy' | 'unhealthy'

export interface TaskState {
  state: TaskLifecycleState
  failed: boolean
  restarts: number
  /** Only for tasks with checks. */
  health?: TaskHealth
  startedAt?: number
  finishedAt?: number
  /** The most recent events, oldest first (bounded by the client). */
  events: TaskEvent[]
}

/** What the node drainer asks of an allocation (Nomad's desired transition). */
export interface DesiredTransition {
  /** Place a replacement on another node; stop this one once the replacement is healthy. */
  migrate: boolean
  /** The drain deadline passed: stop it now, without waiting for its replacement. */
  force?: boolean
}

export interface Allocation {
  id: string
  /** Stable name, e.g. "web.frontend[0]": a replacement keeps its slot's name. */
  name: string
  jobId: string
  jobVersion: number
  group: string
  index: number
  nodeId: string
  evalId: string
  desiredStatus: DesiredStatus
  desiredDescription: string
  clientStatus: ClientStatus
  clientDescription: string
  taskStates: Record<string, TaskState>
  resources: AllocatedResources
  /** The deployment that placed (or adopted) it; absent outside deployments. */
  deploymentId?: string
  /**
   * Health as the client decided it (once, per the group's update block), and
   * whether the deployment placed it as a canary. Absent until either is known.
   */
  deploymentStatus?: AllocDeploymentStatus
  /** Set by the node drainer; absent otherwise (and in entries written before drains existed). */
  desiredTransition?: DesiredTransition
  /** The allocation this one replaced, and how many replacements led here. */
  previousAllocId?: string
  rescheduleCount: number
  /** When each replacement after a failure in this chain was placed (ms), for the reschedule interval. */
  rescheduleHistory?: number[]
  /** Outcome of the checks of each checked service, by service name (reported by the client). */
  serviceHealth?: Record<string, ServiceHealth>
  createIndex: number
  modifyIndex: number
  createTime: number
  modifyTime: number
}

export interface AllocDeploymentStatus {
  /** Undefined until the client decides. */
  healthy?: boolean
  /** When health was decided (or the canary placed), ms. */
  timestamp: number
  canary?: boolean
}

/** The client found the allocation healthy (running, checks passing, for min_healthy_time). */
export function isAllocHealthy(a: Allocation): boolean {
  return a.deploymentStatus?.healthy === true
}

export function isTerminal(a: Allocation): boolean {
  return TERMINAL_CLIENT_STATUSES.has(a.clientStatus)
}

/** An allocation that still holds (or will hold) resources on its node. */
export function isLive(a: Allocation): boolean {
  return a.desiredStatus === 'run' && !isTerminal(a)
}
