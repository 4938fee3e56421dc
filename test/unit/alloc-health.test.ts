// The client's health verdict on an allocation (fake clock): running and checks
// passing for min_healthy_time → healthy; failure, restart or healthy_deadline → unhealthy.
import test from 'ava'
import { AllocHealthTracker } from '../../src/runtime/alloc-health.ts'
import type { Task, TaskState } from '../../src/structs/index.ts'

const base = { env: {}, resources: { cpu: 10, memoryMB: 10 }, killTimeoutMs: 1000 }
const web: Task = { ...base, name: 'web', driver: 'exec', config: { command: 'x', args: [] } }
const checked: Task = { ...web, name: 'api', checks: [{ type: 'tcp', port: 'p', intervalMs: 1000, timeoutMs: 500, retries: 1, startPeriodMs: 0 }] }
const init: Task = { ...web, name: 'init', lifecycle: { hook: 'prestart', sidecar: false } }
const strategy = { minHealthyTimeMs: 10_000, healthyDeadlineMs: 60_000, healthCheck: 'checks' as const }

const st = (state: TaskState['state'], extra: Partial<TaskState> = {}): TaskState => ({ state, failed: false, restarts: 0, events: [], ...extra })

test('healthy once every task has run for min_healthy_time; the recheck time says when to look again', (t) => {
  const h = new AllocHealthTracker(strategy, [web], 0)
  t.deepEqual(h.observe({ web: st('pending') }, 0), { recheckAt: 60_000 })
  t.deepEqual(h.observe({ web: st('running') }, 1_000), { recheckAt: 11_000 })
  t.deepEqual(h.observe({ web: st('running') }, 5_000), { recheckAt: 11_000 })
  const seen = h.observe({ web: st('running') }, 11_000)
  t.is(seen.verdict?.healthy, true)
  t.is(seen.verdict?.time, 11_000)
  t.regex(seen.verdict!.reason, /tasks running for 10s/)
  // Decided once: a later failure does not change it.
  t.is(h.observe({ web: st('dead', { failed: true }) }, 12_000).verdict?.healthy, true)
})

test('a task that stops running restarts the min_healthy_time clock', (t) => {
  const h = new AllocHealthTracker(strategy, [web], 0)
  h.observe({ web: st('running') }, 1_000)
  t.deepEqual(h.observe({ web: st('pending') }, 5_000), { recheckAt: 60_000 })
  t.deepEqual(h.observe({ web: st('running') }, 6_000), { recheckAt: 16_000 })
  t.is(h.observe({ web: st('running') }, 15_999).verdict, undefined)
  t.is(h.observe({ web: st('running') }, 16_000).verdict?.healthy, true)
})

test('with health_check "checks" the checks must pass too; with "task_states" they are ignored', (t) => {
  const h = new AllocHealthTracker(strategy, [checked], 0)
  t.deepEqual(h.observe({ api: st('running', { health: 'unknown' }) }, 1_000), { recheckAt: 60_000 })
  t.deepEqual(h.observe({ api: st('running', { health: 'healthy' }) }, 2_000), { recheckAt: 12_000 })
  t.deepEqual(h.observe({ api: st('running', { health: 'unhealthy' }) }, 3_000), { recheckAt: 60_000 }, 'a failing check resets the clock')
  t.deepEqual(h.observe({ api: st('running', { health: 'healthy' }) }, 4_000), { recheckAt: 14_000 })
  const v = h.observe({ api: st('running', { health: 'healthy' }) }, 14_000).verdict
  t.is(v?.healthy, true)
  t.regex(v!.reason, /with checks passing/)

  const states = new AllocHealthTracker({ ...strategy, healthCheck: 'task_states' }, [checked], 0)
  states.observe({ api: st('running', { health: 'unhealthy' }) }, 1_000)
  t.is(states.observe({ api: st('running', { health: 'unhealthy' }) }, 11_000).verdict?.healthy, true)
})

test('unhealthy at healthy_deadline, naming what it waited for', (t) => {
  const h = new AllocHealthTracker(strategy, [checked], 100)
  h.observe({ api: st('running', { health: 'unhealthy' }) }, 1_000)
  t.is(h.observe({ api: st('running', { health: 'unhealthy' }) }, 59_999).verdict, undefined)
  const v = h.observe({ api: st('running', { health: 'unhealthy' }) }, 60_100).verdict
  t.is(v?.healthy, false)
  t.is(v?.reason, 'not healthy within healthy_deadline 1m: checks of task "api" are not passing')
})

test('min_healthy_time reaching past the deadline: the deadline decides', (t) => {
  const h = new AllocHealthTracker(strategy, [web], 0)
  t.deepEqual(h.observe({ web: st('running') }, 55_000), { recheckAt: 60_000 })
  t.is(h.observe({ web: st('running') }, 60_000).verdict?.healthy, false)
})

test('a failed or restarted task makes the allocation unhealthy at once', (t) => {
  const failed = new AllocHealthTracker(strategy, [web], 0)
  t.deepEqual(failed.observe({ web: st('dead', { failed: true }) }, 500).verdict, { healthy: false, reason: 'task "web" failed', time: 500 })
  const restarted = new AllocHealthTracker(strategy, [web], 0, { web: st('running', { restarts: 2 }) })
  t.is(restarted.observe({ web: st('running', { restarts: 2 }) }, 1_000).verdict, undefined, 'restarts before tracking began do not count')
  t.is(restarted.observe({ web: st('pending', { restarts: 3 }) }, 2_000).verdict?.reason, 'task "web" restarted')
})

test('prestart tasks that complete do not hold health back', (t) => {
  const h = new AllocHealthTracker(strategy, [init, web], 0)
  h.observe({ init: st('dead'), web: st('running') }, 1_000)
  t.is(h.observe({ init: st('dead'), web: st('running') }, 11_000).verdict?.healthy, true)
})

test('with health_check "checks", services with checks must be passing too', (t) => {
  const svc = { name: 'api', port: 'http', tags: [], checks: [{ type: 'tcp' as const, port: 'http', intervalMs: 1000, timeoutMs: 500, retries: 1, startPeriodMs: 0 }] }
  const h = new AllocHealthTracker(strategy, [web], 0, {}, [svc, { name: 'plain', port: 'http', tags: [] }])
  t.deepEqual(h.observe({ web: st('running') }, 1_000, { api: { status: 'critical' } }), { recheckAt: 60_000 })
  t.deepEqual(h.observe({ web: st('running') }, 2_000, { api: { status: 'passing' } }), { recheckAt: 12_000 })
  t.is(h.observe({ web: st('running') }, 12_000, { api: { status: 'passing' } }).verdict?.healthy, true)
  const late = new AllocHealthTracker(strategy, [web], 0, {}, [svc])
  t.regex(late.observe({ web: st('running') }, 60_000).verdict!.reason, /checks of service "api" are not passing/)
})
