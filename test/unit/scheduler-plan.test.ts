// `job plan`: the dry run computed from a StateStore, without HTTP and without writes.
import test from 'ava'
import { planJob, planRoute } from '../../src/api/plan.ts'
import { HttpError, type Request } from '../../src/api/http.ts'
import { formatPlan } from '../../src/commands/job/plan.ts'
import type { StateStore } from '../../src/fsm/index.ts'
import type { JobSpec } from '../../src/structs/index.ts'
import { fsmStore, group, newEval, newNode, spec } from './fixtures.ts'

/** A cluster of three nodes in racks a, a, b, and job "web" registered with its allocations running. */
function cluster(s: JobSpec = spec('web', [group('fe', 2)])) {
  const st = fsmStore()
  st.applyOk({ type: 'NodeRegister', node: newNode('n1', { meta: { rack: 'a' } }), time: 1 })
  st.applyOk({ type: 'NodeRegister', node: newNode('n2', { meta: { rack: 'a' } }), time: 1 })
  st.applyOk({ type: 'NodeRegister', node: newNode('n3', { meta: { rack: 'b' } }), time: 1 })
  st.applyOk({ type: 'JobRegister', spec: s, time: 2, eval: newEval('e1', s.id) })
  const p = planJob(st.state, s, 3)
  st.applyOk({
    type: 'PlanApply', evalId: 'e1', time: 3, newEvals: [], stop: [],
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 3 },
    place: p.placements.map((x, i) => ({
      id: `a${i}`, name: x.name, jobId: s.id, jobVersion: 0, group: x.group, index: i, nodeId: x.nodeId, evalId: 'e1',
      desiredStatus: 'run', desiredDescription: '', clientStatus: 'running', clientDescription: '', taskStates: {},
      resources: { cpu: 100, memoryMB: 64, ports: [{ label: 'http', value: 20000 + i, to: 80, hostIp: '127.0.0.1' }] },
      rescheduleCount: 0, createTime: 3, modifyTime: 3,
    })),
  })
  return st
}

const snapshot = (state: StateStore) => JSON.stringify({ rows: state.rows(), index: state.appliedIndex })

test('a new job: every allocation created, where each would go, and nothing written', (t) => {
  const st = fsmStore()
  st.applyOk({ type: 'NodeRegister', node: newNode('n1'), time: 1 })
  const before = snapshot(st.state)
  const plan = planJob(st.state, spec('web', [group('fe', 2)]), 10)
  t.is(snapshot(st.state), before, 'the state is untouched')
  t.like(plan, { jobId: 'web', type: 'added', currentVersion: null, version: 0, jobModifyIndex: 0, placementFailures: {}, stops: [] })
  t.deepEqual(plan.diff, { fe: { create: 2, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 0 } })
  t.deepEqual(plan.placements.map((p) => [p.name, p.nodeName]), [['web.fe[0]', 'n1'], ['web.fe[1]', 'n1']])
  t.deepEqual(Object.keys(plan.placements[0]!.scores), ['binpack', 'job-anti-affinity'])
})

test('the registered spec unchanged: no new version, allocations ignored', (t) => {
  const st = cluster()
  const plan = planJob(st.state, spec('web', [group('fe', 2)]), 10)
  t.like(plan, { type: 'none', currentVersion: 0, version: 0, jobModifyIndex: st.state.get('jobs', 'web')!.modifyIndex })
  t.deepEqual(plan.diff, { fe: { create: 0, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 2 } })
  t.deepEqual(plan.placements, [])
})

test('an edited job: a smaller count destroys the extra allocation and updates the rest in place', (t) => {
  const st = cluster()
  const before = snapshot(st.state)
  const plan = planJob(st.state, spec('web', [group('fe', 1), group('be', 1)]), 10)
  t.is(snapshot(st.state), before)
  t.like(plan, { type: 'edited', currentVersion: 0, version: 1, jobModifyIndex: 4 })
  t.deepEqual(plan.diff, {
    fe: { create: 0, destroy: 1, inPlaceUpdate: 1, destructiveUpdate: 0, ignore: 0 },
    be: { create: 1, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 0 },
  })
  t.deepEqual(plan.stops.map((s) => [s.name, s.description]), [['web.fe[1]', 'scaled down']])
})

test('an edited task: the next version replaces allocations (max_parallel at a time, the rest later), linked to what they replace', (t) => {
  const st = cluster()
  const g = group('fe', 2)
  g.tasks[0] = { ...g.tasks[0]!, env: { CHANGED: 'yes' } }
  const plan = planJob(st.state, spec('web', [g]), 10)
  t.deepEqual(plan.diff.fe, { create: 0, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 2, ignore: 0 })
  t.deepEqual(plan.stops.map((s) => [s.name, s.description]).sort(), [['web.fe[0]', 'updated to job version 1']], 'the first batch of the rollout')
  t.truthy(plan.placements.find((p) => p.group === 'fe')?.previousAllocId, 'the replacement links to what it replaces')
})

test('a stopped job planned again gets a new version and its allocations created', (t) => {
  const st = cluster()
  st.applyOk({ type: 'JobDeregister', jobId: 'web', purge: false, time: 5, eval: newEval('e2', 'web') })
  const plan = planJob(st.state, spec('web', [group('fe', 2)]), 10)
  t.like(plan, { type: 'edited', currentVersion: 0, version: 1 })
})

test('constraints that no node meets: placement failures with the reasons per node', (t) => {
  const st = cluster()
  const g = { ...group('fe', 3), constraints: [{ attribute: '${meta.rack}', operator: '=' as const, value: 'b' }, { attribute: '', operator: 'distinct_hosts' as const, value: 'true' }] }
  const plan = planJob(st.state, spec('web', [g]), 10)
  t.deepEqual(plan.diff.fe, { create: 1, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 2, ignore: 0 })
  t.deepEqual(plan.placements.map((p) => p.nodeName), ['n3'])
  t.deepEqual(plan.placementFailures, {
    fe: {
      unplaced: 1, nodesEvaluated: 3,
      filtered: { 'constraint ${meta.rack} = b': 2, 'constraint distinct_hosts': 1 },
      exhausted: {},
      details: [
        'node n1: ${meta.rack} is "a" (constraint ${meta.rack} = b)',
        'node n2: ${meta.rack} is "a" (constraint ${meta.rack} = b)',
        'node n3: already runs 1 allocation(s) of group web.fe (constraint distinct_hosts)',
      ],
    },
  })
})

test('the route validates the body like POST /v1/jobs: 400 with every field error', async (t) => {
  const st = fsmStore()
  const req = (body: unknown) => ({ body: async () => body }) as unknown as Request
  const err = await t.throwsAsync(planRoute(st.state, req({ job: { web: { group: { fe: { constraint: [{ attribute: 'rack', operator: '~' }], task: { t: { driver: 'exec', config: { command: 'x' } } } } } } } })))
  t.true(err instanceof HttpError)
  const h = err as HttpError
  t.is(h.status, 400)
  t.is(h.field, 'job.web.group.fe.constraint[0].attribute')
  t.deepEqual(h.errors!.map((e) => e.field), ['job.web.group.fe.constraint[0].attribute', 'job.web.group.fe.constraint[0].operator', 'job.web.group.fe.constraint[0].value'])
  const ok = await planRoute(st.state, req({ job: { web: { group: { fe: { task: { t: { driver: 'exec', config: { command: 'x' } } } } } } } }))
  t.like(ok, { jobId: 'web', type: 'added' })
})

test('the CLI text: job line, changes per group, placements, failures', (t) => {
  const st = cluster()
  const g = { ...group('fe', 3), constraints: [{ attribute: '${meta.rack}', operator: '=' as const, value: 'b' }, { attribute: '', operator: 'distinct_hosts' as const, value: 'true' }] }
  const lines = formatPlan(planJob(st.state, spec('web', [g]), 10), 'web.json')
  t.is(lines[0], '~ Job: "web" (version 0 → 1)')
  t.deepEqual(lines.slice(1, 4), ['  Group "fe"', '    + create 1', '    ~ update 2 (destructive)'])
  t.true(lines.some((l) => /^ {4}web\.fe\[\d\] → node n3 \(score -?\d\.\d{3}: binpack \d\.\d{3}, job-anti-affinity/.test(l)))
  t.true(lines.includes('- WARNING: Failed to place all allocations.'))
  t.true(lines.includes('Group "fe": 1 allocation(s) not placed; 3 node(s) evaluated'))
  t.true(lines.includes('  * 2 node(s) filtered: constraint ${meta.rack} = b'))
  t.true(lines.includes('    - node n3: already runs 1 allocation(s) of group web.fe (constraint distinct_hosts)'))
  t.true(lines.includes('Job Modify Index: 4'))
  const fine = formatPlan(planJob(st.state, spec('web', [group('fe', 2)]), 10), 'web.json')
  t.deepEqual(fine.slice(0, 3), ['  Job: "web" (unchanged, version 0)', '  Group "fe"', '      ignore 2'])
  t.true(fine.includes('- All allocations would be placed.'))
})
