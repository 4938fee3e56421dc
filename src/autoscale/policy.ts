// The autoscaler's decisions, pure: given what the leader observed about a
// group (its count, allocations, last change, a metric reading) and the time,
// what its count should become and why. Nomad autoscaler's target-value
// strategy: desired = ceil(instances × value / target), clamped to [min, max],
// scale-in limited by scale_in_step, scale-out by scale_out_step, nothing
// within the cooldown of the last change. The leader's loop does the IO
// (src/agent/autoscaler.ts).
import type { ScalingEvent, ScalingMeasurement, ScalingPolicy, ScalingReason } from '../structs/index.ts'

/** A metric averaged per instance, or why there is none this round. */
export type MetricReading =
  | { ok: true; value: number; instances: number }
  | { ok: false; reason: string }

export interface GroupObservation {
  now: number
  policy: ScalingPolicy
  /** The group's count (desired allocations). */
  count: number
  /** Allocations of the group that should run and do. */
  running: number
  /** Allocations of the group that should run and have not started yet. */
  starting: number
  /** When the group's count last changed (autoscaler or `job scale`); undefined: never recorded. */
  lastChangeTime: number | undefined
  /** A deployment of the job is in progress: its allocations are being replaced. */
  deploymentRunning: boolean
}

export type Decision =
  | { action: 'scale'; to: number; reason: 'scaled'; message: string; measurement: ScalingMeasurement }
  | { action: 'none'; reason: Exclude<ScalingReason, 'scaled' | 'manual'>; message: string; measurement?: ScalingMeasurement }

/** A decision that needs no metric: the group is not to be evaluated now. Null: measure, then decide(). */
export function gate(o: GroupObservation): Extract<Decision, { action: 'none' }> | null {
  const p = o.policy
  if (!p.enabled) return { action: 'none', reason: 'disabled', message: 'autoscaling is paused (scaling.enabled is false)' }
  if (o.deploymentRunning) return { action: 'none', reason: 'deployment-running', message: 'a deployment of the job is in progress' }
  if (o.lastChangeTime !== undefined && o.now < o.lastChangeTime + p.cooldownMs) {
    const left = Math.ceil((o.lastChangeTime + p.cooldownMs - o.now) / 1000)
    return { action: 'none', reason: 'cooldown', message: `in cooldown for another ${left}s after the last change` }
  }
  if (o.running === 0) {
    return { action: 'none', reason: 'no-running-allocations', message: o.starting > 0 ? `no running allocation to measure (${o.starting} starting)` : 'no running allocation to measure' }
  }
  return null
}

/** Whether a computed count is the desired count: guards against 2.0000000001 becoming 3. */
function ceil(x: number): number {
  return Math.ceil(x - 1e-9)
}

function metricText(m: ScalingMeasurement): string {
  const over = `over ${m.instances} allocation${m.instances === 1 ? '' : 's'}`
  return m.metric === 'cpu_percent'
    ? `cpu ${round1(m.value)}% of target ${m.target}% ${over}`
    : `${round1(m.value)} req/s per instance, target ${m.target}, ${over}`
}

function round1(n: number): number {
  return Math.round(n * 10) / 10
}

export function decide(o: GroupObservation, reading: MetricReading): Decision {
  const gated = gate(o)
  if (gated) return gated
  const p = o.policy
  if (!reading.ok) return { action: 'none', reason: 'missing-metrics', message: `no decision: ${reading.reason}` }
  if (!Number.isFinite(reading.value) || reading.value < 0 || reading.instances <= 0) {
    return { action: 'none', reason: 'missing-metrics', message: `no decision: unusable reading ${reading.value} over ${reading.instances} instances` }
  }
  const measurement: ScalingMeasurement = { metric: p.policy.metric, value: round1(reading.value), target: p.policy.target, instances: reading.instances }
  const text = metricText(measurement)
  const wanted = ceil((reading.instances * reading.value) / p.policy.target)
  const bounded = Math.min(p.max, Math.max(p.min, wanted))
  let to = bounded
  if (to < o.count) to = Math.max(to, o.count - p.scaleInStep)
  if (to > o.count && p.scaleOutStep !== undefined) to = Math.min(to, o.count + p.scaleOutStep)
  if (to === o.count) {
    if (wanted > o.count && o.count >= p.max) return { action: 'none', reason: 'at-bounds', message: `${text}: wants ${wanted}, already at max ${p.max}`, measurement }
    if (wanted < o.count && o.count <= p.min) return { action: 'none', reason: 'at-bounds', message: `${text}: wants ${wanted}, already at min ${p.min}`, measurement }
    return { action: 'none', reason: 'within-target', message: `${text}: ${o.count} is enough`, measurement }
  }
  if (to > o.count && o.starting > 0) {
    return { action: 'none', reason: 'allocations-starting', message: `${text}: wants ${to}, waiting for ${o.starting} starting allocation${o.starting === 1 ? '' : 's'}`, measurement }
  }
  const limits: string[] = []
  if (wanted > p.max) limits.push(`limited to max ${p.max}`)
  if (wanted < p.min) limits.push(`limited to min ${p.min}`)
  if (to !== bounded) limits.push(to < bounded ? `scale_out_step ${p.scaleOutStep}` : `scale_in_step ${p.scaleInStep}`)
  const why = wanted === to ? '' : ` (wants ${wanted}; ${limits.join(', ')})`
  return { action: 'scale', to, reason: 'scaled', message: `${text}: ${o.count} → ${to}${why}`, measurement }
}

/** A decision that changed nothing is recorded again after this long even when its reason is the same. */
export const UNCHANGED_RECORD_INTERVAL_MS = 5 * 60_000

/**
 * Whether a decision that changed nothing goes into the group's history: when
 * its reason differs from the last recorded event's, or the last one is older
 * than UNCHANGED_RECORD_INTERVAL_MS. Cooldowns are never recorded (they follow
 * every change and say nothing new).
 */
export function shouldRecord(d: Extract<Decision, { action: 'none' }>, last: ScalingEvent | undefined, now: number): boolean {
  if (d.reason === 'cooldown') return false
  if (!last) return true
  return last.reason !== d.reason || now - last.time >= UNCHANGED_RECORD_INTERVAL_MS
}

/** When the group's count last changed, from its scaling history (newest last). */
export function lastChangeTime(events: readonly ScalingEvent[]): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) if (events[i]!.from !== events[i]!.to) return events[i]!.time
  return undefined
}

// --- Metrics --------------------------------------------------------------------

/** One task's sample as GET /v1/client/allocation/:id/stats answers it. */
export interface TaskUsage {
  state: string
  cpu?: { percent: number; mhz: number }
  reserved: { cpu: number; memoryMB: number }
  error?: string
}

/**
 * CPU use of one allocation in percent of what its running tasks reserved
 * (MHz used ÷ MHz reserved), or why it cannot be told.
 */
export function allocCpuPercent(tasks: Readonly<Record<string, TaskUsage>>): { ok: true; percent: number } | { ok: false; reason: string } {
  let used = 0
  let reserved = 0
  for (const [name, t] of Object.entries(tasks)) {
    if (t.state !== 'running') continue
    if (t.error !== undefined || !t.cpu) return { ok: false, reason: `task "${name}": ${t.error ?? 'no CPU sample'}` }
    used += t.cpu.mhz
    reserved += t.reserved.cpu
  }
  if (reserved <= 0) return { ok: false, reason: 'no running task' }
  return { ok: true, percent: (used / reserved) * 100 }
}

/** Averages per-allocation CPU percentages; a missing one makes the reading unusable (no guessing). */
export function averageCpu(perAlloc: readonly ({ ok: true; percent: number } | { ok: false; reason: string; allocId?: string })[]): MetricReading {
  if (perAlloc.length === 0) return { ok: false, reason: 'no running allocation to measure' }
  let sum = 0
  for (const a of perAlloc) {
    if (!a.ok) return { ok: false, reason: `${perAlloc.filter((x) => !x.ok).length} of ${perAlloc.length} allocations did not report CPU (${a.allocId ? `${a.allocId.slice(0, 8)}: ` : ''}${a.reason})` }
    sum += a.percent
  }
  return { ok: true, value: sum / perAlloc.length, instances: perAlloc.length }
}

/** Cumulative request counters at one moment: per source (agent and service) → requests so far. */
export interface CounterSample {
  time: number
  counters: Readonly<Record<string, number>>
}

/**
 * Requests per second per instance between two samples of cumulative
 * counters. A counter missing from the earlier sample (a new agent) adds
 * nothing this round; one that went down (its agent restarted) counts from 0.
 */
export function requestRate(prev: CounterSample | undefined, cur: CounterSample, instances: number): MetricReading {
  if (!prev) return { ok: false, reason: 'collecting a first sample of the request counters' }
  const seconds = (cur.time - prev.time) / 1000
  if (seconds <= 0) return { ok: false, reason: 'request counters sampled twice at the same time' }
  if (instances <= 0) return { ok: false, reason: 'no healthy instance' }
  let requests = 0
  for (const [source, n] of Object.entries(cur.counters)) {
    const before = prev.counters[source]
    if (before === undefined) continue
    requests += n >= before ? n - before : n
  }
  return { ok: true, value: requests / seconds / instances, instances }
}
