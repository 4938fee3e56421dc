// Deployment state in the FSM: client health reports, deployments, promotion, stability.
import test from 'ava'
import type { NewAlloc } from '../../src/fsm/index.ts'
import { fsmStore, group, newEval, newNode, spec } from './fixtures.ts'


const placed = (id: string, over: Partial<NewAlloc> = {}): NewAlloc => ({
  id, name: `web.fe[0]`, jobId: 'web', jobVersion: 0, group: 'fe', index: 0, nodeId: 'id-n1', evalId: 'e1',
  desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '', taskStates: {},
  resources: { cpu: 10, memoryMB: 10, ports: [] }, rescheduleCount: 0, createTime: 2, modifyTime: 2, ...over,
})
const complete = { status: 'complete' as const, statusDescription: '', failedGroups: {}, modifyTime: 2 }

test('AllocClientUpdate: health is decided once, a canary flag is kept, reports without it leave it alone', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply({ type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], stop: [], evalUpdate: complete, place: [placed('a1', { deploymentStatus: { canary: true, timestamp: 2 } })] })
  const report = (deploymentStatus?: { healthy: boolean; timestamp: number }) =>
    apply({ type: 'AllocClientUpdate', time: 3, evals: [], updates: [{ allocId: 'a1', clientStatus: 'running', clientDescription: '', taskStates: {}, ...(deploymentStatus ? { deploymentStatus } : {}) }] })
  report()
  t.deepEqual(state.get('allocs', 'a1')!.deploymentStatus, { canary: true, timestamp: 2 })
  report({ healthy: true, timestamp: 5 })
  t.deepEqual(state.get('allocs', 'a1')!.deploymentStatus, { canary: true, healthy: true, timestamp: 5 })
  report({ healthy: false, timestamp: 9 })
  report()
  t.deepEqual(state.get('allocs', 'a1')!.deploymentStatus, { canary: true, healthy: true, timestamp: 5 }, 'decided once')
})

const deploymentOf = (id: string, jobVersion: number, canaries = 0) => ({
  id, jobId: 'web', jobVersion, jobCreateIndex: 2, status: 'running' as const, statusDescription: '', createTime: 2, modifyTime: 2,
  groups: { fe: { desiredTotal: 1, desiredCanaries: canaries, placedCanaries: [], promoted: false, autoRevert: true, autoPromote: false, progressDeadlineMs: 60_000, placed: 0, healthy: 0, unhealthy: 0, requireProgressBy: 60_002 } },
})

test('deployments: placements and health are counted; progress moves the deadline; success makes the version stable', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply({ type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], stop: [], evalUpdate: complete, deployment: deploymentOf('d1', 0), place: [placed('a1', { deploymentId: 'd1' })] })
  t.like(state.get('deployments', 'd1')!.groups.fe, { placed: 1, healthy: 0 })
  apply({ type: 'AllocClientUpdate', time: 10_000, evals: [], updates: [{ allocId: 'a1', clientStatus: 'running', clientDescription: '', taskStates: {}, deploymentStatus: { healthy: true, timestamp: 9_000 } }] })
  t.like(state.get('deployments', 'd1')!.groups.fe, { placed: 1, healthy: 1, requireProgressBy: 70_000 })
  const modifyIndex = state.get('jobs', 'web')!.modifyIndex
  t.true(apply({ type: 'DeploymentStatusUpdate', deploymentId: 'd1', status: 'successful', statusDescription: 'done', time: 11_000 }).ok)
  t.is(state.get('jobs', 'web')!.stable, true)
  t.is(state.get('jobs', 'web')!.modifyIndex, modifyIndex, 'stability is not a change of the spec (check-and-set)')
  t.is(state.jobVersions('web')[0]!.stable, true)
  const again = apply({ type: 'DeploymentStatusUpdate', deploymentId: 'd1', status: 'failed', statusDescription: 'x', time: 12_000 })
  t.like(again, { ok: false, code: 'conflict', error: 'deployment d1 is already successful (done)' })
  t.like(apply({ type: 'DeploymentStatusUpdate', deploymentId: 'nope', status: 'failed', statusDescription: 'x', time: 12_000 }), { ok: false, code: 'not-found' })
})

test('deployments: a failure with a revert registers the stable spec as a new version; promotion needs canaries', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply({ type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], stop: [], place: [], evalUpdate: complete, deployment: deploymentOf('d1', 0) })
  t.like(apply({ type: 'DeploymentPromote', deploymentId: 'd1', time: 3, eval: newEval('p', 'web') }), { ok: false, code: 'invalid', error: 'deployment d1 has no canaries to promote' })
  t.is(state.get('evals', 'p'), undefined, 'nothing changed')
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 4, eval: newEval('e2', 'web') })
  apply({ type: 'PlanApply', evalId: 'e2', time: 5, newEvals: [], stop: [], place: [], evalUpdate: complete, deployment: deploymentOf('d2', 1, 1), deploymentUpdates: [{ deploymentId: 'd1', status: 'cancelled', statusDescription: 'superseded' }] })
  t.is(state.get('deployments', 'd1')!.status, 'cancelled')
  t.like(apply({ type: 'DeploymentPromote', deploymentId: 'd2', groups: ['nope'], time: 6, eval: newEval('p', 'web') }), { ok: false, error: 'deployment d2 has no group "nope" (groups: fe)' })
  t.true(apply({ type: 'DeploymentPromote', deploymentId: 'd2', time: 6, eval: newEval('p', 'web') }).ok)
  t.like(state.get('deployments', 'd2')!.groups.fe, { promoted: true, requireProgressBy: 60_006 }, 'the progress deadline starts again at promotion')
  t.is(state.get('evals', 'p')!.status, 'pending')
  const revert = spec('web', [group('fe', 1)])
  t.true(apply({ type: 'DeploymentStatusUpdate', deploymentId: 'd2', status: 'failed', statusDescription: 'unhealthy', time: 7, revert, eval: newEval('r', 'web') }).ok)
  const job = state.get('jobs', 'web')!
  t.is(job.version, 2)
  t.is(job.groups[0]!.count, 1)
  t.is(state.get('evals', 'r')!.status, 'pending')
})
