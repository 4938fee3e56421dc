// FSM commands of node eligibility and drains: what they change, what they
// refuse, and that old entries (nodes without the new fields) still apply.
import test from 'ava'
import type { Command } from '../../src/fsm/index.ts'
import { fsmStore, group, newEval, newNode, spec } from './fixtures.ts'


const placed = (id: string, nodeId = 'id-n1', index = 0) => ({
  id, name: `web.fe[${index}]`, jobId: 'web', jobVersion: 0, group: 'fe', index, nodeId, evalId: 'e1',
  desiredStatus: 'run' as const, desiredDescription: '', clientStatus: 'running' as const, clientDescription: '', taskStates: {},
  resources: { cpu: 100, memoryMB: 64, ports: [] }, rescheduleCount: 0, createTime: 1, modifyTime: 1,
})

const plan = (place: ReturnType<typeof placed>[], stop: string[] = []): Command => ({
  type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], place, stop: stop.map((allocId) => ({ allocId, description: 'x' })),
  evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 2 },
})

test('NodeEligibility sets eligibility; enabling a draining node is refused; unknown nodes are not found', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  t.like(apply({ type: 'NodeEligibility', nodeId: 'id-n1', eligible: false, time: 1 }), { ok: true })
  t.false(state.get('nodes', 'id-n1')!.eligible)
  t.like(apply({ type: 'NodeEligibility', nodeId: 'nope', eligible: false, time: 1 }), { ok: false, code: 'not-found' })
  apply({ type: 'NodeDrain', nodeId: 'id-n1', drain: { startedAt: 5, deadlineAt: 100, ignoreSystem: false }, time: 5 })
  const refused = apply({ type: 'NodeEligibility', nodeId: 'id-n1', eligible: true, time: 6 })
  t.like(refused, { ok: false, code: 'conflict' })
  t.regex((refused as { error: string }).error, /node n1 is draining/)
  t.false(state.get('nodes', 'id-n1')!.eligible)
})

test('NodeDrain makes the node ineligible; NodeDrainEnd complete keeps it so, canceled sets eligibility as asked', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'NodeDrain', nodeId: 'id-n1', drain: { startedAt: 5, deadlineAt: 100, ignoreSystem: true }, time: 5 })
  t.like(state.get('nodes', 'id-n1'), { eligible: false, drain: { startedAt: 5, deadlineAt: 100, ignoreSystem: true } })
  t.like(apply({ type: 'NodeDrainEnd', nodeId: 'id-n1', outcome: 'complete', eligible: false, time: 9 }), { ok: true })
  const n = state.get('nodes', 'id-n1')!
  t.is(n.drain, undefined)
  t.false(n.eligible)
  t.deepEqual(n.lastDrain, { startedAt: 5, endedAt: 9, status: 'complete' })
  t.like(apply({ type: 'NodeDrainEnd', nodeId: 'id-n1', outcome: 'complete', eligible: false, time: 10 }), { ok: false, code: 'conflict' }, 'nothing to complete')

  apply({ type: 'NodeDrain', nodeId: 'id-n1', drain: { startedAt: 20, ignoreSystem: false }, time: 20 })
  apply({ type: 'NodeDrainEnd', nodeId: 'id-n1', outcome: 'canceled', eligible: true, time: 21 })
  t.like(state.get('nodes', 'id-n1'), { eligible: true, lastDrain: { startedAt: 20, endedAt: 21, status: 'canceled' } })
  t.like(apply({ type: 'NodeDrain', nodeId: 'nope', drain: { startedAt: 1, ignoreSystem: false }, time: 1 }), { ok: false, code: 'not-found' })
})

test('a node re-registering (agent restart) keeps its eligibility and drain', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'NodeDrain', nodeId: 'id-n1', drain: { startedAt: 5, ignoreSystem: false }, time: 5 })
  apply({ type: 'NodeRegister', node: newNode('n1', { eligible: true }), time: 6 })
  t.like(state.get('nodes', 'id-n1'), { eligible: false, drain: { startedAt: 5 } })
})

test('AllocDesiredTransition marks allocations still meant to run and records the evaluations', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 1, eval: newEval('e1', 'web') })
  apply(plan([placed('a', 'id-n1', 0), placed('b', 'id-n1', 1)]))
  apply(plan([], ['b']))
  apply({
    type: 'AllocDesiredTransition', time: 3, evals: [newEval('e2', 'web', { triggeredBy: 'node-drain' })],
    transitions: [{ allocId: 'a', transition: { migrate: true } }, { allocId: 'b', transition: { migrate: true } }, { allocId: 'zz', transition: { migrate: true } }],
  })
  t.deepEqual(state.get('allocs', 'a')!.desiredTransition, { migrate: true })
  t.is(state.get('allocs', 'b')!.desiredTransition, undefined, 'a stopped allocation is not marked')
  t.like(state.get('evals', 'e2'), { status: 'pending', triggeredBy: 'node-drain' })
})

test('PlanApply is refused when it places on an ineligible node', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply({ type: 'NodeEligibility', nodeId: 'id-n1', eligible: false, time: 1 })
  const r = apply(plan([placed('a')]))
  t.like(r, { ok: false, code: 'conflict' })
  t.regex((r as { error: string }).error, /node n1 is ineligible for scheduling/)
  t.is(state.get('allocs', 'a'), undefined)
})
