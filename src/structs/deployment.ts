// A deployment: the rollout of one version of a service job, as Nomad's.
// The scheduler creates it; the FSM counts placements and health; the leader's
// deployment watcher moves its status.

export type DeploymentStatus = 'running' | 'paused' | 'successful' | 'failed' | 'cancelled'
export const DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ['running', 'paused', 'successful', 'failed', 'cancelled']

export interface DeploymentGroup {
  /** The group's count in this version. */
  desiredTotal: number
  /** Canaries wanted before promotion (0 when the version replaces nothing or the group has none). */
  desiredCanaries: number
  /** Ids of the canaries placed so far. */
  placedCanaries: string[]
  /** Canaries promoted: the rest of the group rolls. */
  promoted: boolean
  autoRevert: boolean
  autoPromote: boolean
  progressDeadlineMs: number
  /** Allocations the deployment placed or adopted, and how many of them the clients found healthy / unhealthy. */
  placed: number
  healthy: number
  unhealthy: number
  /** Fails unless an allocation becomes healthy before this time (ms); absent with no progress deadline. */
  requireProgressBy?: number
}

export interface Deployment {
  id: string
  jobId: string
  jobVersion: number
  /** The job's createIndex: a purged and re-registered job starts its versions again. */
  jobCreateIndex: number
  status: DeploymentStatus
  statusDescription: string
  groups: Record<string, DeploymentGroup>
  createTime: number
  modifyTime: number
  createIndex: number
  modifyIndex: number
}

/** Still rolling out (or paused): allocations it places carry its id. */
export function isDeploymentActive(d: Pick<Deployment, 'status'>): boolean {
  return d.status === 'running' || d.status === 'paused'
}

/** The group needs nothing more: canaries (if any) promoted, and every allocation of the version healthy. */
export function isDeploymentGroupDone(g: DeploymentGroup): boolean {
  return (g.desiredCanaries === 0 || g.promoted) && g.healthy >= g.desiredTotal
}

/** Canaries placed and not yet promoted hold the rest of the group back. */
export function awaitsPromotion(g: DeploymentGroup): boolean {
  return g.desiredCanaries > 0 && !g.promoted
}
