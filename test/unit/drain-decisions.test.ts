// The node drainer's decisions, over a fake clock and hand-built states:
// pacing by migrate.max_parallel (cluster-wide per group), batch left alone,
// system allocations last (or never with ignoreSystem), everything at the
// deadline, evaluations when a replacement turns healthy, completion.
import test from 'ava'
import { decideDrains } from '../../src/agent/drain-decisions.ts'
import type { DrainStrategy } from '../../src/structs/index.ts'
import { alloc, evaluation, group, job, node, schedulerState, spec } from './fixtures.ts'

const healthy = { deploymentStatus: { healthy: true, timestamp: 1 } }
const drainingNode = (name: string, d: Partial<DrainStrategy> = {}) => node(name, { eligible: false, drain: { startedAt: 0, ignoreSystem: false, deadlineAt: 10_000, ...d } })
const ids = (d: ReturnType<typeof decideDrains>) => d.migrate.map((m) => m.allocId)

test('one allocation of a group at a time (max_parallel 1), the oldest first; evaluations for its job', (t) => {
  const web = job(spec('web', [group('fe', 3)]))
  const allocs = [2, 0, 1].map((i) => alloc(`w${i}`, web, 'fe', i, 'id-n1', { createIndex: 10 + i, ...healthy }))
  const d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], allocs), 1_000)
  t.deepEqual(ids(d), ['w0'])
  t.deepEqual(d.migrate[0]!.transition, { migrate: true })
  t.deepEqual(d.evaluate, ['web'])
  t.deepEqual(d.complete, [])
  t.is(d.wakeAt, 10_000, 'looks again at the deadline')
})

test('max_parallel 2 moves two at once; a migration in flight on another draining node counts against it', (t) => {
  const web = job(spec('web', [group('fe', 4, { migrate: { maxParallel: 2, healthCheck: 'checks', minHealthyTimeMs: 0, healthyDeadlineMs: 1_000 } })]))
  const allocs = [0, 1, 2].map((i) => alloc(`w${i}`, web, 'fe', i, 'id-n1', { createIndex: 10 + i }))
  t.deepEqual(ids(decideDrains(schedulerState([web], [drainingNode('n1')], allocs), 0)), ['w0', 'w1'])
  const elsewhere = alloc('w3', web, 'fe', 3, 'id-n2', { createIndex: 5, desiredTransition: { migrate: true } })
  t.deepEqual(ids(decideDrains(schedulerState([web], [drainingNode('n1'), drainingNode('n2')], [...allocs, elsewhere]), 0)), ['w0'])
})

test('nothing new starts while a migration is in flight; when its replacement is healthy the job is evaluated once', (t) => {
  const web = job(spec('web', [group('fe', 2)]))
  const m = alloc('m', web, 'fe', 0, 'id-n1', { createIndex: 1, desiredTransition: { migrate: true } })
  const other = alloc('o', web, 'fe', 1, 'id-n1', { createIndex: 2 })
  const pendingRepl = alloc('r', web, 'fe', 0, 'id-n2', { createIndex: 3, clientStatus: 'pending' })
  let d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], [m, other, pendingRepl]), 0)
  t.deepEqual(d.migrate, [])
  t.deepEqual(d.evaluate, [])
  const healthyRepl = { ...pendingRepl, clientStatus: 'running' as const, ...healthy }
  d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], [m, other, healthyRepl]), 0)
  t.deepEqual(d.migrate, [])
  t.deepEqual(d.evaluate, ['web'])
  const pending = evaluation('e9', 'web', { status: 'pending' })
  d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], [m, other, healthyRepl], [pending]), 0)
  t.deepEqual(d.evaluate, [], 'an evaluation is already pending')
  // Once the scheduler stopped it, the next one starts.
  d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], [{ ...m, desiredStatus: 'stop' }, other, healthyRepl]), 0)
  t.deepEqual(ids(d), ['o'])
})

test('batch allocations are left to finish; system allocations go last; ignoreSystem leaves them', (t) => {
  const web = job(spec('web', [group('fe', 1)]))
  const batch = job(spec('etl', [group('b', 1)], { type: 'batch' }))
  const sys = job(spec('logs', [group('s', 1)], { type: 'system' }))
  const w = alloc('w', web, 'fe', 0, 'id-n1')
  const b = alloc('b', batch, 'b', 0, 'id-n1')
  const s = alloc('s', sys, 's', 0, 'id-n1')
  const jobs = [web, batch, sys]
  t.deepEqual(ids(decideDrains(schedulerState(jobs, [drainingNode('n1')], [w, b, s]), 0)), ['w'])
  t.deepEqual(ids(decideDrains(schedulerState(jobs, [drainingNode('n1')], [b, s]), 0)), [], 'the batch allocation still runs: the system one stays')
  const d = decideDrains(schedulerState(jobs, [drainingNode('n1')], [{ ...b, clientStatus: 'complete' }, s]), 0)
  t.deepEqual(ids(d), ['s'], 'batch done: the system allocation goes')
  t.deepEqual(d.evaluate, ['logs'])
  const ignoring = decideDrains(schedulerState(jobs, [drainingNode('n1', { ignoreSystem: true })], [s]), 0)
  t.deepEqual(ids(ignoring), [])
  t.deepEqual(ignoring.complete, ['id-n1'], 'with ignoreSystem only system allocations left: complete')
})

test('at the deadline every allocation left is forced, once; with no deadline nothing is forced', (t) => {
  const web = job(spec('web', [group('fe', 3)]))
  const batch = job(spec('etl', [group('b', 1)], { type: 'batch' }))
  const allocs = [
    alloc('w0', web, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true } }), alloc('w1', web, 'fe', 1, 'id-n1'),
    alloc('b', batch, 'b', 0, 'id-n1'),
  ]
  const before = decideDrains(schedulerState([web, batch], [drainingNode('n1')], allocs), 9_999)
  t.true(before.migrate.every((m) => !m.transition.force))
  const at = decideDrains(schedulerState([web, batch], [drainingNode('n1')], allocs), 10_000)
  t.deepEqual(at.migrate.map((m) => [m.allocId, m.transition.force]), [['b', true], ['w0', true], ['w1', true]])
  t.deepEqual(at.evaluate, ['etl', 'web'])
  t.is(at.wakeAt, undefined)
  const forced = allocs.map((a) => ({ ...a, desiredTransition: { migrate: true, force: true } }))
  t.deepEqual(ids(decideDrains(schedulerState([web, batch], [drainingNode('n1')], forced), 20_000)), [], 'already forced')
  const never = decideDrains(schedulerState([web, batch], [drainingNode('n1', { deadlineAt: undefined })], allocs), 1e12)
  t.true(never.migrate.every((m) => !m.transition.force))
  t.is(never.wakeAt, undefined)
})

test('a draining node with nothing live left is complete; nodes not draining are left alone', (t) => {
  const web = job(spec('web', [group('fe', 1)]))
  const gone = alloc('w', web, 'fe', 0, 'id-n1', { desiredStatus: 'stop', clientStatus: 'complete' })
  const d = decideDrains(schedulerState([web], [drainingNode('n1'), node('n2')], [gone, alloc('x', web, 'fe', 0, 'id-n2')]), 0)
  t.deepEqual(d.complete, ['id-n1'])
  t.deepEqual(d.migrate, [])
})
