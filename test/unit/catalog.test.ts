// The service catalog derived in the state store: instances follow allocations
// and job versions, health from service checks, per-service indexes, the
// publish-port conflict check in apply, and a rebuild from a snapshot.
import test from 'ava'
import { applyCommand, StateStore, type Change, type Command } from '../../src/fsm/index.ts'
import type { ServiceSpec, TaskGroup } from '../../src/structs/index.ts'
import { alloc, group, job, newEval, node, spec } from './fixtures.ts'

const web: ServiceSpec = { name: 'web', port: 'http', tags: ['v1'], checks: [{ type: 'http', port: 'http', path: '/', intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 }] }
const plain: ServiceSpec = { name: 'plain', port: 'http', tags: [] }

function store(groups: TaskGroup[]) {
  const s = new StateStore()
  const j = job(spec('app', groups))
  s.applyChanges([
    { table: 'nodes', key: 'id-n1', value: node('n1') },
    { table: 'nodes', key: 'id-n2', value: node('n2', { id: 'id-n2' }) },
    { table: 'jobs', key: 'app', value: j },
    { table: 'jobVersions', key: 'app@0000000000', value: j },
  ], 1)
  return { s, j }
}

test('instances exist while the allocation should run and runs; health comes from the reported service checks', (t) => {
  const { s, j } = store([group('fe', 2, { services: [web, plain] })])
  t.deepEqual(s.services().map((x) => [x.name, x.total]), [['plain', 0], ['web', 0]], 'declared services are listed before any instance')
  const a1 = alloc('a1', j, 'fe', 0, 'id-n1', { clientStatus: 'pending' })
  let changed = s.applyChanges([{ table: 'allocs', key: 'a1', value: a1 }], 2)
  t.deepEqual(changed, [], 'a pending allocation registers nothing')
  changed = s.applyChanges([{ table: 'allocs', key: 'a1', value: { ...a1, clientStatus: 'running' } }], 3)
  t.deepEqual(changed.map((c) => c.service).sort(), ['plain', 'web'])
  const [i] = s.serviceInstances('web')
  t.like(i, { service: 'web', allocId: 'a1', jobId: 'app', group: 'fe', nodeId: 'id-n1', nodeName: 'n1', address: '127.0.0.1', port: 20000, tags: ['v1'], healthy: false, status: 'unknown' })
  t.like(s.serviceInstances('plain')[0], { healthy: true, status: 'passing' }, 'no checks: passing while it runs')
  t.is(s.serviceIndex('web'), 3)

  s.applyChanges([{ table: 'allocs', key: 'a1', value: { ...a1, clientStatus: 'running', serviceHealth: { web: { status: 'passing', output: 'HTTP 200' } } } }], 4)
  t.like(s.serviceInstances('web')[0], { healthy: true, status: 'passing' })
  t.is(s.serviceIndex('web'), 4)
  t.is(s.serviceIndex('plain'), 3, 'an unrelated change leaves the other service alone')
  t.is(s.catalogIndex, 4)
  t.like(s.services().find((x) => x.name === 'web'), { healthy: 1, total: 1, tags: ['v1'], jobs: ['app'] })

  s.applyChanges([{ table: 'allocs', key: 'a1', value: { ...a1, clientStatus: 'running', serviceHealth: { web: { status: 'critical' } } } }], 5)
  t.like(s.serviceInstances('web')[0], { healthy: false, status: 'critical' })

  // Stopped (desired), failed or gone: out at once.
  s.applyChanges([{ table: 'allocs', key: 'a1', value: { ...a1, desiredStatus: 'stop' } }], 6)
  t.deepEqual(s.serviceInstances('web'), [])
  t.is(s.serviceIndex('web'), 6)
  s.applyChanges([{ table: 'allocs', key: 'a2', value: alloc('a2', j, 'fe', 1, 'id-n2') }], 7)
  t.is(s.serviceInstances('plain').length, 1)
  s.applyChanges([{ table: 'allocs', key: 'a2', value: alloc('a2', j, 'fe', 1, 'id-n2', { clientStatus: 'lost' }) }], 8)
  t.deepEqual(s.serviceInstances('plain'), [])
})

test('a task-level service follows its task; tags come from the allocation\'s job version', (t) => {
  const { s, j } = store([group('fe', 1, { services: [{ ...plain, task: 'main' }] })])
  const running = { state: 'running' as const, failed: false, restarts: 0, events: [] }
  s.applyChanges([{ table: 'allocs', key: 'a1', value: alloc('a1', j, 'fe', 0, 'id-n1', { taskStates: { main: running } }) }], 2)
  t.like(s.serviceInstances('plain')[0], { task: 'main', status: 'passing' })
  s.applyChanges([{ table: 'allocs', key: 'a1', value: alloc('a1', j, 'fe', 0, 'id-n1', { taskStates: { main: { ...running, state: 'pending' } } }) }], 3)
  t.like(s.serviceInstances('plain')[0], { status: 'unknown', healthy: false })
  // A new version with new tags; the allocation moves to it in place.
  const v1 = { ...j, version: 1, groups: [group('fe', 1, { services: [{ ...plain, task: 'main', tags: ['new'] }] })] }
  s.applyChanges([{ table: 'jobs', key: 'app', value: v1 }, { table: 'jobVersions', key: 'app@0000000001', value: v1 }], 4)
  t.deepEqual(s.serviceInstances('plain')[0]!.tags, [])
  s.applyChanges([{ table: 'allocs', key: 'a1', value: alloc('a1', j, 'fe', 0, 'id-n1', { jobVersion: 1, taskStates: { main: running } }) }], 5)
  t.deepEqual(s.serviceInstances('plain')[0]!.tags, ['new'])
})

test('the catalog is rebuilt from a snapshot whatever the order of its rows', (t) => {
  const { s, j } = store([group('fe', 1, { services: [plain] })])
  s.applyChanges([{ table: 'allocs', key: 'a1', value: alloc('a1', j, 'fe', 0, 'id-n1') }], 2)
  const rows: Change[] = s.rows().reverse()
  const copy = new StateStore()
  copy.reset(rows, 9)
  t.deepEqual(copy.serviceInstances('plain'), s.serviceInstances('plain'))
  t.is(copy.serviceIndex('plain'), 9)
})

test('apply refuses a job publishing a port another running job publishes; a stopped job frees it', (t) => {
  const pub = (port: number): ServiceSpec => ({ ...plain, publish: { port, balance: 'round-robin', mode: 'tcp' } })
  const s = new StateStore()
  const apply = (index: number, cmd: Command) => {
    const r = applyCommand(s, index, cmd)
    s.applyChanges(r.changes, index)
    return r.result
  }
  t.true(apply(1, { type: 'JobRegister', spec: spec('a', [group('g', 1, { services: [pub(8080)] })]), time: 1, eval: newEval('e1', 'a') }).ok)
  const clash = apply(2, { type: 'JobRegister', spec: spec('b', [group('g', 1, { services: [{ ...pub(8080), name: 'other' }] })]), time: 2, eval: newEval('e2', 'b') })
  t.like(clash, { ok: false, code: 'conflict', error: 'port 8080 is already published by service "plain" of job "a"' })
  t.true(apply(3, { type: 'JobRegister', spec: spec('a', [group('g', 2, { services: [pub(8080)] })]), time: 3, eval: newEval('e3', 'a') }).ok, 'the same job may keep its port')
  t.deepEqual(s.publishedPorts().map((p) => [p.port, p.jobId]), [[8080, 'a']])
  t.true(apply(4, { type: 'JobDeregister', jobId: 'a', purge: false, time: 4, eval: newEval('e4', 'a') }).ok)
  t.deepEqual(s.publishedPorts(), [])
  t.true(apply(5, { type: 'JobRegister', spec: spec('b', [group('g', 1, { services: [{ ...pub(8080), name: 'other' }] })]), time: 5, eval: newEval('e5', 'b') }).ok)
})

test('instances on a node the cluster declared down are critical at once', (t) => {
  const { s, j } = store([group('fe', 1, { services: [plain] })])
  s.applyChanges([{ table: 'allocs', key: 'a1', value: alloc('a1', j, 'fe', 0, 'id-n1') }], 2)
  t.true(s.serviceInstances('plain')[0]!.healthy)
  const changed = s.applyChanges([{ table: 'nodes', key: 'id-n1', value: node('n1', { status: 'down' }) }], 3)
  t.deepEqual(changed.map((c) => c.service), ['plain'])
  t.like(s.serviceInstances('plain')[0], { healthy: false, status: 'critical' })
})
