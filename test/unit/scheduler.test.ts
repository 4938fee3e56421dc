import test from 'ava'
import { rescheduleDelay, schedule } from '../../src/scheduler/index.ts'

import { alloc, evaluation, group, idSource, job, node, schedulerState, spec } from './fixtures.ts'


const ctx = (now = 1_000_000) => ({ now, newId: idSource() })

test('places count allocations with distinct names and free ports', (t) => {
  const j = job(spec('web', [group('fe', 3)]))
  const plan = schedule(schedulerState([j], [node('n1')]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.name), ['web.fe[0]', 'web.fe[1]', 'web.fe[2]'])
  const ports = plan.place.map((a) => a.resources.ports[0]!.value)
  t.is(new Set(ports).size, 3)
  for (const p of ports) t.true(p >= 20000 && p <= 20009)
  t.is(plan.evalUpdate.status, 'complete')
})

test('never overcommits memory; reports what is exhausted on which node', (t) => {
  const g = group('fe', 5)
  g.tasks[0]!.resources.memoryMB = 400
  const plan = schedule(schedulerState([job(spec('web', [g]))], [node('n1')]), evaluation('e1', 'web'), ctx())
  t.is(plan.place.length, 2, '1024 MB holds two 400 MB allocations')
  t.is(plan.evalUpdate.status, 'blocked')
  const f = plan.evalUpdate.failedGroups.fe!
  t.is(f.unplaced, 3)
  t.is(f.exhausted.memory, 1)
  t.regex(f.details[0]!, /node n1: memory exhausted \(need 400 MB, free 224 MB\)/)
})

test('filters nodes without the driver or not ready, counting each reason', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const plan = schedule(schedulerState([j], [node('a', { drivers: ['exec'] }), node('b', { status: 'down' })]), evaluation('e1', 'web'), ctx())
  t.is(plan.place.length, 0)
  t.deepEqual(plan.evalUpdate.failedGroups.fe!.filtered, { 'missing driver "docker"': 1, 'node not ready': 1 })
})

test('keeps running allocations and places only the missing ones', (t) => {
  const j = job(spec('web', [group('fe', 2)]))
  const existing = [alloc('x0', j, 'fe', 0, 'id-n1')]
  const plan = schedule(schedulerState([j], [node('n1')], existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.name), ['web.fe[1]'])
  t.not(plan.place[0]!.resources.ports[0]!.value, 20000, 'does not reuse the port of the running allocation')
  t.deepEqual(plan.stop, [])
})

test('scaling down stops the highest indexes', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const existing = [0, 1, 2].map((i) => alloc(`x${i}`, j, 'fe', i, 'id-n1'))
  const plan = schedule(schedulerState([j], [node('n1')], existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop.map((s) => s.allocId).sort(), ['x1', 'x2'])
  t.deepEqual(plan.place, [])
})

test('a stopped job stops every allocation that should run', (t) => {
  const j = job(spec('web', [group('fe', 2)]), { stop: true })
  const existing = [alloc('x0', j, 'fe', 0, 'id-n1'), alloc('x1', j, 'fe', 1, 'id-n1', { desiredStatus: 'stop' })]
  const plan = schedule(schedulerState([j], [node('n1')], existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [{ allocId: 'x0', description: 'job stopped' }])
})

test('allocations on a down node are lost and replaced elsewhere at once', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const existing = [alloc('x0', j, 'fe', 0, 'id-n1')]
  const plan = schedule(schedulerState([j], [node('n1', { status: 'down' }), node('n2')], existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [{ allocId: 'x0', description: 'node down: allocation lost', lost: true }])
  t.like(plan.place[0], { nodeId: 'id-n2', name: 'web.fe[0]', previousAllocId: 'x0' })
})

test('a failed allocation is replaced only after its reschedule delay, with backoff (Nomad defaults: 30 s exponential)', (t) => {
  const j = job(spec('web', [group('fe', 1)]))
  const failed = alloc('x0', j, 'fe', 0, 'id-n1', { clientStatus: 'failed', modifyTime: 1_000_000, rescheduleCount: 1 })
  const early = schedule(schedulerState([j], [node('n1')], [failed]), evaluation('e1', 'web'), ctx(1_000_000 + 1_000))
  t.deepEqual(early.place, [])
  t.is(early.newEvals.length, 1)
  t.is(early.newEvals[0]!.waitUntil, 1_000_000 + 60_000, 'second failure waits 2 × 30 s')
  const late = schedule(schedulerState([j], [node('n1')], [failed]), evaluation('e2', 'web'), ctx(1_000_000 + 60_000))
  t.like(late.place[0], { previousAllocId: 'x0', rescheduleCount: 2, rescheduleHistory: [1_060_000] })
  t.deepEqual(late.stop, [{ allocId: 'x0', description: 'rescheduled after failure' }])
})

test('the group reschedule policy: delay function, and attempts within the interval', (t) => {
  const g = group('fe', 1, { reschedule: { attempts: 2, intervalMs: 600_000, delayMs: 1_000, delayFunction: 'constant', maxDelayMs: 0, unlimited: false } })
  const j = job(spec('web', [g]))
  const twice = alloc('x0', j, 'fe', 0, 'id-n1', { clientStatus: 'failed', modifyTime: 500_000, rescheduleCount: 2, rescheduleHistory: [100_000, 400_000] })
  const none = schedule(schedulerState([j], [node('n1')], [twice]), evaluation('e1', 'web'), ctx(600_000))
  t.deepEqual(none.place, [], 'two replacements in the last 10 minutes: out of attempts')
  t.deepEqual(none.newEvals, [], 'and nothing scheduled for later')
  const later = schedule(schedulerState([j], [node('n1')], [twice]), evaluation('e2', 'web'), ctx(750_000))
  t.like(later.place[0], { previousAllocId: 'x0', rescheduleHistory: [100_000, 400_000, 750_000] }, 'the first attempt left the interval')
})

test('delay functions', (t) => {
  const base = { attempts: 0, intervalMs: 0, delayMs: 10, maxDelayMs: 100, unlimited: true }
  t.deepEqual([0, 1, 2, 3, 4].map((n) => rescheduleDelay({ ...base, delayFunction: 'exponential' }, n)), [10, 20, 40, 80, 100])
  t.deepEqual([0, 1, 2, 3, 4, 5].map((n) => rescheduleDelay({ ...base, delayFunction: 'fibonacci' }, n)), [10, 10, 20, 30, 50, 80])
  t.deepEqual([0, 5].map((n) => rescheduleDelay({ ...base, delayFunction: 'constant' }, n)), [10, 10])
})

test('a new job version that changes a task replaces allocations of the old one', (t) => {
  const v0 = job(spec('web', [group('fe', 1)]))
  const g1 = group('fe', 1)
  g1.tasks[0] = { ...g1.tasks[0]!, env: { NEW: '1' } }
  const v1 = job(spec('web', [g1]), { version: 1 })
  const old = alloc('x0', v0, 'fe', 0, 'id-n1')
  const plan = schedule(schedulerState([v1, v0], [node('n1')], [old]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop.map((s) => s.allocId), ['x0'])
  t.like(plan.place[0], { jobVersion: 1, name: 'web.fe[0]' })
  t.deepEqual(plan.inPlace, [])
})

test('a new version that only changes count moves running allocations in place: no restart', (t) => {
  const v0 = job(spec('web', [group('fe', 2)]))
  const v1 = job(spec('web', [group('fe', 3)]), { version: 1 })
  const running = [alloc('x0', v0, 'fe', 0, 'id-n1'), alloc('x1', v0, 'fe', 1, 'id-n1')]
  const plan = schedule(schedulerState([v1, v0], [node('n1')], running), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.stop, [])
  t.deepEqual(plan.inPlace, [{ allocId: 'x0', jobVersion: 1 }, { allocId: 'x1', jobVersion: 1 }])
  t.deepEqual(plan.place.map((a) => a.name), ['web.fe[2]'])
  t.like(plan.desiredUpdates.fe, { inPlaceUpdate: 2, create: 1, destructiveUpdate: 0 })
})

test('bin-packing prefers the fuller node; anti-affinity spreads the same group', (t) => {
  const other = job(spec('other', [group('g', 1)]))
  const busy = alloc('o0', other, 'g', 0, 'id-n2')
  const j = job(spec('web', [group('fe', 2)]))
  const plan = schedule(schedulerState([j, other], [node('n1'), node('n2')], [busy]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId), ['id-n2', 'id-n1'])
})

test('system jobs put one allocation on every node that can run them', (t) => {
  const j = job(spec('agentd', [group('g', 1)], { type: 'system' }))
  const nodes = [node('n1'), node('n2'), node('n3', { drivers: ['exec'] })]
  const existing = [alloc('x', j, 'g', 0, 'id-n1')]
  const plan = schedule(schedulerState([j], nodes, existing), evaluation('e1', 'agentd'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId), ['id-n2'])
  t.is(plan.evalUpdate.status, 'complete')
})

test('property: random clusters and jobs never overcommit a node, never exceed count, never share a port', (t) => {
  let seed = 42
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  for (let round = 0; round < 200; round++) {
    const nodes = Array.from({ length: 1 + rand(5) }, (_, i) => node(`n${i}`, { resources: { cpu: 200 + rand(1000), memoryMB: 128 + rand(1024) } }))
    const groups = Array.from({ length: 1 + rand(3) }, (_, i) => {
      const g = group(`g${i}`, rand(8))
      g.tasks[0]!.resources = { cpu: 50 + rand(300), memoryMB: 32 + rand(300) }
      return g
    })
    const j = job(spec('j', groups))
    const plan = schedule(schedulerState([j], nodes), evaluation('e', 'j'), ctx())
    for (const n of nodes) {
      const mine = plan.place.filter((a) => a.nodeId === n.id)
      t.true(mine.reduce((s, a) => s + a.resources.cpu, 0) <= n.resources.cpu, `round ${round}: cpu`)
      t.true(mine.reduce((s, a) => s + a.resources.memoryMB, 0) <= n.resources.memoryMB, `round ${round}: memory`)
      const ports = mine.flatMap((a) => a.resources.ports.map((p) => p.value))
      t.is(new Set(ports).size, ports.length, `round ${round}: ports`)
    }
    for (const g of groups) {
      const placed = plan.place.filter((a) => a.group === g.name).length
      const unplaced = plan.evalUpdate.failedGroups[g.name]?.unplaced ?? 0
      t.is(placed + unplaced, g.count, `round ${round}: group ${g.name} accounts for count`)
    }
  }
})

test('an allocated port keeps the protocol its spec names', (t) => {
  const g = group('fe', 1)
  g.ports = [{ label: 'dns', to: 53, protocol: 'udp' }, { label: 'http', to: 80 }]
  const plan = schedule(schedulerState([job(spec('web', [g]))], [node('n1')]), evaluation('e1', 'web'), ctx())
  const [dns, http] = plan.place[0]!.resources.ports
  t.is(dns!.protocol, 'udp')
  t.false('protocol' in http!, 'tcp: no field')
})
