// Autoscaling: a group's scaling policy (from the job file) and the decisions
// the autoscaler and `job scale` record about it.

/** What the autoscaler steers towards: exactly one metric and its target per instance. */
export type ScalingTarget =
  /** Average CPU use of the group's running allocations, in percent of their reserved CPU (MHz). */
  | { metric: 'cpu_percent'; target: number }
  /** Requests per second per healthy instance, counted by the mesh on every agent. */
  | { metric: 'requests_per_second'; target: number }

export type ScalingMetric = ScalingTarget['metric']
export const SCALING_METRICS: readonly ScalingMetric[] = ['cpu_percent', 'requests_per_second']

/** A group's `scaling` block, normalised. The group's count always lies within [min, max]. */
export interface ScalingPolicy {
  min: number
  max: number
  /** false: the autoscaler leaves the group alone (manual `job scale` still works within bounds). */
  enabled: boolean
  /** No autoscaling decision within this long of the group's last count change. */
  cooldownMs: number
  evaluationIntervalMs: number
  /** At most this many allocations removed per decision. */
  scaleInStep: number
  /** At most this many allocations added per decision; absent: no limit. */
  scaleOutStep?: number
  policy: ScalingTarget
}

/**
 * Why a decision was (or was not) taken. Stable codes: the autoscaler records
 * a decision that changes nothing only when its code differs from the last
 * recorded one (or a while has passed), so the history is not flooded.
 */
export type ScalingReason =
  | 'scaled'
  | 'manual'
  | 'within-target'
  | 'at-bounds'
  | 'disabled'
  | 'cooldown'
  | 'deployment-running'
  | 'no-running-allocations'
  | 'allocations-starting'
  | 'missing-metrics'
  | 'error'

export interface ScalingMeasurement {
  metric: ScalingMetric
  /** Average per instance (percent of reserved CPU, or requests per second). */
  value: number
  target: number
  /** Instances the value was averaged over. */
  instances: number
}

/** One decision about a group's count, recorded in the state (the last few per group). */
export interface ScalingEvent {
  time: number
  source: 'autoscaler' | 'manual'
  /** The count before and after; equal when nothing changed. */
  from: number
  to: number
  reason: ScalingReason
  /** Human-readable: "cpu 168% of target 70% over 2 allocations → 5, limited to max 3". */
  message: string
  measurement?: ScalingMeasurement
  /** The job version the change made (changes only). */
  jobVersion?: number
}

/** A job group's recorded decisions, newest last. Keyed `${jobId}/${group}`. */
export interface ScalingHistory {
  jobId: string
  group: string
  events: ScalingEvent[]
  createIndex: number
  modifyIndex: number
}

/** Decisions kept per group. */
export const SCALING_EVENTS_KEPT = 20

export function scalingKey(jobId: string, group: string): string {
  return `${jobId}/${group}`
}

/** Whether the event changed the count. */
export function isScalingChange(e: ScalingEvent): boolean {
  return e.from !== e.to
}
