// The scheduler's side of node drains and scale-in: a migrating allocation
// gets a replacement on another node while it keeps running, and stops once
// the replacement is healthy (make before break); past the deadline it stops
// at once; system allocations are stopped, not replaced. Scale-in stops the
// least healthy, then the newest.
import test from 'ava'
import { schedule } from '../../src/scheduler/index.ts'

import { alloc, evaluation, group, idSource, job, node, schedulerState, spec } from './fixtures.ts'


const ctx = (now = 1_000_000) => ({ now, newId: idSource() })
const healthy = { deploymentStatus: { healthy: true, timestamp: 1 } }
const unhealthy = { deploymentStatus: { healthy: false, timestamp: 1 } }
const draining = (name: string) => node(name, { eligible: false, drain: { startedAt: 0, ignoreSystem: false } })

test('a migrating allocation gets a replacement elsewhere and keeps running', (t) => {
  const j = job(spec('web', [group('fe', 2)]))
  const allocs = [
    alloc('m', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true }, ...healthy }),
    alloc('k', j, 'fe', 1, 'id-n1', healthy),
  ]
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], allocs), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [], 'nothing stops before the replacement is healthy')
  t.is(plan.place.length, 1)
  t.like(plan.place[0], { name: 'web.fe[0]', index: 0, nodeId: 'id-n2', previousAllocId: 'm' })
  t.deepEqual(plan.inPlace, [])
})

test('while the replacement is not healthy both run and nothing more is placed; once healthy the old one stops', (t) => {
  const j = job(spec('web', [group('fe', 2)]))
  const base = [alloc('m', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true }, ...healthy }), alloc('k', j, 'fe', 1, 'id-n2', healthy)]
  for (const r of [
    alloc('r', j, 'fe', 0, 'id-n2', { clientStatus: 'pending', createIndex: 5 }),
    alloc('r', j, 'fe', 0, 'id-n2', { clientStatus: 'running', createIndex: 5 }),
    alloc('r', j, 'fe', 0, 'id-n2', { ...unhealthy, createIndex: 5 }),
  ]) {
    const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], [...base, r]), evaluation('e1', 'web'), ctx())
    t.deepEqual(plan.stop, [], `replacement ${r.clientStatus}: the pair holds one slot, nothing is scaled down`)
    t.deepEqual(plan.place, [])
  }
  const r = alloc('r', j, 'fe', 0, 'id-n2', { ...healthy, createIndex: 5 })
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], [...base, r]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [{ allocId: 'm', description: 'migrated: its replacement is healthy' }])
  t.deepEqual(plan.place, [])
  t.is(plan.desiredUpdates.fe!.ignore, 2)
})

test('a replacement that failed is rescheduled (its reschedule chain kept) while the migrating one keeps running', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const m = alloc('m', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true }, ...healthy })
  const r = alloc('r', j, 'fe', 0, 'id-n2', { clientStatus: 'failed', createIndex: 5, modifyTime: 0 })
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2'), node('n3')], [m, r]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop.map((s) => s.allocId), ['r'])
  t.is(plan.place.length, 1)
  t.like(plan.place[0], { index: 0, previousAllocId: 'r', rescheduleCount: 1 })
})

test('past the drain deadline (force) the allocation stops at once and its replacement is placed', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const m = alloc('m', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true, force: true } })
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], [m]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [{ allocId: 'm', description: 'node drain deadline reached' }])
  t.like(plan.place[0], { index: 0, nodeId: 'id-n2', previousAllocId: 'm' })
  // With its replacement already running, forced: stopped, nothing new placed.
  const r = alloc('r', j, 'fe', 0, 'id-n2', { createIndex: 5 })
  const again = schedule(schedulerState([j], [draining('n1'), node('n2')], [{ ...m }, r]), evaluation('e1', 'web'), ctx())
  t.deepEqual(again.stop.map((s) => s.allocId), ['m'])
  t.deepEqual(again.place, [])
})

test('without room for a replacement the migrating allocation keeps running and the evaluation is blocked', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const m = alloc('m', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true } })
  const plan = schedule(schedulerState([j], [draining('n1')], [m]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [])
  t.is(plan.evalUpdate.status, 'blocked')
  t.deepEqual(plan.evalUpdate.failedGroups.fe!.details, ['node n1: ineligible for scheduling (draining)'])
})

test('system allocations marked to migrate are stopped and not placed again on the draining node', (t) => {
  const j = job(spec('agent', [group('a', 1)], { type: 'system' }))
  const allocs = [alloc('s1', j, 'a', 0, 'id-n1', { desiredTransition: { migrate: true } }), alloc('s2', j, 'a', 0, 'id-n2')]
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], allocs), evaluation('e1', 'agent'), ctx())
  t.deepEqual(plan.stop, [{ allocId: 's1', description: 'node drained' }])
  t.deepEqual(plan.place, [])
})

test('ineligible nodes get no new allocations (system jobs skip them), but keep what runs there', (t) => {
  const sys = job(spec('agent', [group('a', 1)], { type: 'system' }))
  const plan = schedule(schedulerState([sys], [node('n1', { eligible: false }), node('n2')]), evaluation('e1', 'agent'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId), ['id-n2'])
  t.is(plan.evalUpdate.status, 'complete', 'a system job does not count an ineligible node as a failure')
  const svc = job(spec('web', [group('fe', 2)]))
  const kept = schedule(schedulerState([svc], [node('n1', { eligible: false }), node('n2')], [alloc('x', svc, 'fe', 0, 'id-n1')]), evaluation('e2', 'web'), ctx())
  t.deepEqual(kept.stop, [])
  t.deepEqual(kept.place.map((a) => [a.name, a.nodeId]), [['web.fe[1]', 'id-n2']])
})

test('scale-in stops the least healthy first, then the newest; the rest are untouched', (t) => {
  const j = job(spec('web', [group('fe', 2)]), { version: 1 })
  const old = { ...j, version: 0, groups: [group('fe', 5)] }
  const allocs = [
    alloc('old-healthy', j, 'fe', 0, 'id-n1', { ...healthy, createIndex: 1, jobVersion: 0 }),
    alloc('new-healthy', j, 'fe', 1, 'id-n1', { ...healthy, createIndex: 9, jobVersion: 0 }),
    alloc('mid-healthy', j, 'fe', 2, 'id-n1', { ...healthy, createIndex: 5, jobVersion: 0 }),
    alloc('unhealthy', j, 'fe', 3, 'id-n1', { ...unhealthy, createIndex: 2, jobVersion: 0 }),
    alloc('pending', j, 'fe', 4, 'id-n1', { clientStatus: 'pending', createIndex: 3, jobVersion: 0 }),
  ]
  const plan = schedule(schedulerState([j, old], [node('n1')], allocs), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop.map((s) => s.allocId).sort(), ['new-healthy', 'pending', 'unhealthy'])
  t.true(plan.stop.every((s) => s.description === 'scaled down'))
  t.deepEqual(plan.inPlace.map((u) => u.allocId).sort(), ['mid-healthy', 'old-healthy'], 'the kept ones move to the new version in place')
  t.deepEqual(plan.place, [])
})

test('scale-in prefers allocations that are moving off a draining node', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const allocs = [
    alloc('moving', j, 'fe', 0, 'id-n1', { desiredTransition: { migrate: true }, ...healthy, createIndex: 1 }),
    alloc('staying', j, 'fe', 1, 'id-n2', { clientStatus: 'pending', createIndex: 9 }),
  ]
  const plan = schedule(schedulerState([j], [draining('n1'), node('n2')], allocs), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop.map((s) => s.allocId), ['moving'])
  t.deepEqual(plan.place, [])
})
