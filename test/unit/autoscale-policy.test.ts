// The autoscaler's pure decisions: target-value math, bounds, steps, cooldown,
// gates, missing metrics, what gets recorded, and the metric helpers.
import test from 'ava'
import {
  allocCpuPercent, averageCpu, decide, gate, lastChangeTime, requestRate, shouldRecord,
  type Decision, type GroupObservation, type MetricReading,
} from '../../src/autoscale/policy.ts'
import type { ScalingEvent, ScalingPolicy } from '../../src/structs/index.ts'

const policy = (over: Partial<ScalingPolicy> = {}): ScalingPolicy => ({
  min: 1, max: 10, enabled: true, cooldownMs: 60_000, evaluationIntervalMs: 10_000, scaleInStep: 1,
  policy: { metric: 'cpu_percent', target: 70 }, ...over,
})
const obs = (over: Partial<GroupObservation> = {}): GroupObservation => ({
  now: 1_000_000, policy: policy(), count: 2, running: 2, starting: 0, lastChangeTime: undefined, deploymentRunning: false, ...over,
})
const cpu = (value: number, instances = 2): MetricReading => ({ ok: true, value, instances })
const scaledTo = (d: Decision) => (d.action === 'scale' ? d.to : null)

test('target value: desired = ceil(instances × value / target)', (t) => {
  const d = decide(obs(), cpu(168))
  t.is(scaledTo(d), 5) // ceil(2 × 168 / 70) = ceil(4.8)
  t.is(d.reason, 'scaled')
  t.regex(d.message, /^cpu 168% of target 70% over 2 allocations: 2 → 5$/)
  t.deepEqual(d.measurement, { metric: 'cpu_percent', value: 168, target: 70, instances: 2 })
  // exactly on target: no change (and no floating-point drift to one more)
  const exact = decide(obs({ policy: policy({ policy: { metric: 'cpu_percent', target: 30 } }), count: 3, running: 3 }), cpu(10 * 3, 3))
  t.is(exact.action, 'none')
  t.is(exact.reason, 'within-target')
  t.is(decide(obs({ count: 3, running: 3 }), cpu(49, 3)).action, 'none', 'natural dead band: 3 × 49 / 70 = 2.1 → 3')
})

test('clamped to max and min, with the limit named', (t) => {
  const up = decide(obs({ policy: policy({ max: 3 }) }), cpu(500))
  t.is(scaledTo(up), 3)
  t.regex(up.message, /2 → 3 \(wants 15; limited to max 3\)/)
  const atMax = decide(obs({ policy: policy({ max: 3 }), count: 3, running: 3 }), cpu(500, 3))
  t.is(atMax.action, 'none')
  t.is(atMax.reason, 'at-bounds')
  t.regex(atMax.message, /wants 22, already at max 3/)
  const atMin = decide(obs({ policy: policy({ min: 2 }) }), cpu(1))
  t.is(atMin.reason, 'at-bounds')
  t.regex(atMin.message, /already at min 2/)
  const toMin = decide(obs({ policy: policy({ min: 2, scaleInStep: 10 }), count: 6, running: 6 }), cpu(0, 6))
  t.is(scaledTo(toMin), 2)
  t.regex(toMin.message, /6 → 2 \(wants 0; limited to min 2\)/)
})

test('scale-in removes at most scale_in_step; scale-out adds at most scale_out_step when set', (t) => {
  t.is(scaledTo(decide(obs({ count: 5, running: 5 }), cpu(0, 5))), 4)
  const d = decide(obs({ count: 5, running: 5, policy: policy({ scaleInStep: 2 }) }), cpu(0, 5))
  t.is(scaledTo(d), 3)
  t.regex(d.message, /5 → 3 \(wants 0; limited to min 1, scale_in_step 2\)/)
  t.is(scaledTo(decide(obs({ count: 5, running: 5, policy: policy({ scaleInStep: 10 }) }), cpu(20, 5))), 2)
  const out = decide(obs({ policy: policy({ scaleOutStep: 2 }) }), cpu(350))
  t.is(scaledTo(out), 4)
  t.regex(out.message, /2 → 4 \(wants 10; scale_out_step 2\)/)
  t.is(scaledTo(decide(obs(), cpu(350))), 10, 'no scale_out_step: straight to the wanted count')
})

test('cooldown: nothing within it of the last change, then decisions resume (fake clock)', (t) => {
  const changed = 1_000_000
  const o = (now: number) => obs({ now, lastChangeTime: changed })
  const during = decide(o(changed + 59_999), cpu(500))
  t.is(during.action, 'none')
  t.is(during.reason, 'cooldown')
  t.regex(during.message, /another 1s/)
  t.is(scaledTo(decide(o(changed + 60_000), cpu(500))), 10)
  t.is(gate(obs({ lastChangeTime: undefined })), null, 'never changed: no cooldown')
})

test('gates: paused, deployment running, nothing running; none of them needs a metric', (t) => {
  t.is(gate(obs({ policy: policy({ enabled: false }) }))?.reason, 'disabled')
  t.is(decide(obs({ policy: policy({ enabled: false }) }), cpu(500)).action, 'none')
  t.is(gate(obs({ deploymentRunning: true }))?.reason, 'deployment-running')
  const idle = gate(obs({ running: 0, starting: 2 }))
  t.is(idle?.reason, 'no-running-allocations')
  t.regex(idle!.message, /2 starting/)
})

test('missing or unusable metrics: no change, with the reason', (t) => {
  const d = decide(obs(), { ok: false, reason: '1 of 2 allocations did not report CPU' })
  t.like(d, { action: 'none', reason: 'missing-metrics' })
  t.regex(d.message, /no decision: 1 of 2 allocations did not report CPU/)
  t.is(decide(obs(), { ok: true, value: Number.NaN, instances: 2 }).reason, 'missing-metrics')
  t.is(decide(obs(), { ok: true, value: -1, instances: 2 }).reason, 'missing-metrics')
  t.is(decide(obs(), { ok: true, value: 50, instances: 0 }).reason, 'missing-metrics')
})

test('scale-out waits while allocations are still starting; scale-in does not', (t) => {
  const wait = decide(obs({ count: 3, running: 2, starting: 1 }), cpu(300))
  t.like(wait, { action: 'none', reason: 'allocations-starting' })
  t.regex(wait.message, /waiting for 1 starting allocation$/)
  t.is(scaledTo(decide(obs({ count: 3, running: 2, starting: 1 }), cpu(1))), 2)
})

test('requests per second: desired from the rate per healthy instance', (t) => {
  const p = policy({ policy: { metric: 'requests_per_second', target: 50 } })
  const d = decide(obs({ policy: p }), { ok: true, value: 120, instances: 2 })
  t.is(scaledTo(d), 5) // 240 req/s in all at 50 per instance
  t.regex(d.message, /120 req\/s per instance, target 50, over 2 allocations: 2 → 5/)
})

test('requestRate: deltas of cumulative counters over the interval, per instance', (t) => {
  t.false(requestRate(undefined, { time: 0, counters: { a: 5 } }, 2).ok, 'first sample is a baseline')
  const prev = { time: 10_000, counters: { 'n1/web': 100, 'n2/web': 50, 'n3/web': 7 } }
  const cur = { time: 20_000, counters: { 'n1/web': 400, 'n2/web': 20, 'n4/web': 999 } }
  // n1: +300, n2 restarted: 20 since, n3 gone, n4 new (no baseline): 320 in 10 s over 4 instances
  t.deepEqual(requestRate(prev, cur, 4), { ok: true, value: 8, instances: 4 })
  t.false(requestRate(prev, { ...cur, time: 10_000 }, 4).ok)
  t.false(requestRate(prev, cur, 0).ok)
})

test('allocCpuPercent and averageCpu: MHz used over MHz reserved, no guessing on gaps', (t) => {
  const r = allocCpuPercent({
    web: { state: 'running', cpu: { percent: 10, mhz: 150 }, reserved: { cpu: 100, memoryMB: 32 } },
    side: { state: 'running', cpu: { percent: 1, mhz: 10 }, reserved: { cpu: 100, memoryMB: 32 } },
    init: { state: 'dead', reserved: { cpu: 500, memoryMB: 32 } },
  })
  t.deepEqual(r, { ok: true, percent: 80 })
  t.false(allocCpuPercent({ web: { state: 'running', reserved: { cpu: 100, memoryMB: 1 }, error: 'engine gone' } }).ok)
  t.false(allocCpuPercent({ web: { state: 'dead', reserved: { cpu: 100, memoryMB: 1 } } }).ok)
  t.deepEqual(averageCpu([{ ok: true, percent: 80 }, { ok: true, percent: 40 }]), { ok: true, value: 60, instances: 2 })
  const gap = averageCpu([{ ok: true, percent: 80 }, { ok: false, reason: 'timeout', allocId: 'abcdef0123' }])
  t.false(gap.ok)
  t.regex((gap as { reason: string }).reason, /1 of 2 allocations did not report CPU \(abcdef01: timeout\)/)
  t.false(averageCpu([]).ok)
})

test('shouldRecord: unchanged decisions are recorded when the reason changes or every 5 minutes; cooldowns never', (t) => {
  const last = (reason: ScalingEvent['reason'], time: number): ScalingEvent => ({ time, source: 'autoscaler', from: 2, to: 2, reason, message: '' })
  const within = { action: 'none', reason: 'within-target', message: '' } as const
  t.true(shouldRecord(within, undefined, 0))
  t.false(shouldRecord(within, last('within-target', 0), 299_999))
  t.true(shouldRecord(within, last('within-target', 0), 300_000))
  t.true(shouldRecord(within, last('scaled', 0), 1))
  t.false(shouldRecord({ action: 'none', reason: 'cooldown', message: '' }, undefined, 0))
})

test('lastChangeTime: the newest event that changed the count', (t) => {
  const e = (time: number, from: number, to: number): ScalingEvent => ({ time, source: 'autoscaler', from, to, reason: from === to ? 'within-target' : 'scaled', message: '' })
  t.is(lastChangeTime([]), undefined)
  t.is(lastChangeTime([e(1, 1, 2), e(2, 2, 2), e(3, 2, 3), e(4, 3, 3)]), 3)
  t.is(lastChangeTime([e(1, 2, 2)]), undefined)
})
