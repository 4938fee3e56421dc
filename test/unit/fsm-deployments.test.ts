// Deployment state in the FSM: client health reports, deployments, promotion, stability.
import test from 'ava'
import { applyCommand, StateStore, type Command, type NewAlloc } from '../../src/fsm/index.ts'
import { group, newEval, newNode, spec } from './fixtures.ts'

function store() {
  const state = new StateStore()
  let index = 0
  const apply = (cmd: Command) => {
    const { changes, result } = applyCommand(state, ++index, cmd)
    state.applyChanges(changes, index)
    return result
  }
  return { state, apply }
}

const placed = (id: string, over: Partial<NewAlloc> = {}): NewAlloc => ({
  id, name: `web.fe[0]`, jobId: 'web', jobVersion: 0, group: 'fe', index: 0, nodeId: 'id-n1', evalId: 'e1',
  desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '', taskStates: {},
  resources: { cpu: 10, memoryMB: 10, ports: [] }, rescheduleCount: 0, createTime: 2, modifyTime: 2, ...over,
})
const complete = { status: 'complete' as const, statusDescription: '', failedGroups: {}, modifyTime: 2 }

test('AllocClientUpdate: health is decided once, a canary flag is kept, reports without it leave it alone', (t) => {
  const { state, apply } = store()
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
