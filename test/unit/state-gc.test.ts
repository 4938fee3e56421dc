// State GC (fsm/gc.ts): what a collection picks, and what StateGc removes.
import test from 'ava'
import type { NewAlloc } from '../../src/fsm/index.ts'
import { collectable } from '../../src/fsm/gc.ts'
import { fsmStore, group, newEval, newNode, spec } from './fixtures.ts'

const placed = (id: string, jobId: string, evalId: string, time: number, over: Partial<NewAlloc> = {}): NewAlloc => ({
  id, name: `${jobId}.fe[0]`, jobId, jobVersion: 0, group: 'fe', index: 0, nodeId: 'id-n1', evalId,
  desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '', taskStates: {},
  resources: { cpu: 10, memoryMB: 10, ports: [] }, rescheduleCount: 0, createTime: time, modifyTime: time, ...over,
})
const done = (time: number) => ({ status: 'complete' as const, statusDescription: '', failedGroups: {}, modifyTime: time })

/**
 * web: a1 running (eval e1 complete). old: stopped at 5, its allocation b1
 * complete at 7 (evals e2, e3). held: c1 failed but still wanted (out of
 * reschedule attempts). gone: purged at 8, its allocation d1 lost at 9.
 * blocked: eval e6 blocked.
 */
function cluster() {
  const s = fsmStore()
  const { applyOk } = s
  applyOk({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  for (const [job, ev] of [['web', 'e1'], ['old', 'e2'], ['held', 'e4'], ['gone', 'e5']] as const) {
    applyOk({ type: 'JobRegister', spec: spec(job, [group('fe', 1)]), time: 1, eval: newEval(ev, job, { createTime: 1, modifyTime: 1 }) })
  }
  applyOk({ type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], stop: [], evalUpdate: done(2), place: [placed('a1', 'web', 'e1', 2)] })
  applyOk({ type: 'PlanApply', evalId: 'e2', time: 2, newEvals: [], stop: [], evalUpdate: done(2), place: [placed('b1', 'old', 'e2', 2)] })
  applyOk({ type: 'PlanApply', evalId: 'e4', time: 2, newEvals: [], stop: [], evalUpdate: done(2), place: [placed('c1', 'held', 'e4', 2)] })
  applyOk({ type: 'PlanApply', evalId: 'e5', time: 2, newEvals: [], stop: [], evalUpdate: done(2), place: [placed('d1', 'gone', 'e5', 2)] })
  const report = (allocId: string, clientStatus: 'running' | 'complete' | 'failed' | 'lost', time: number) =>
    applyOk({ type: 'AllocClientUpdate', time, evals: [], updates: [{ allocId, clientStatus, clientDescription: '', taskStates: {} }] })
  report('a1', 'running', 3)
  report('c1', 'failed', 3)
  applyOk({ type: 'JobDeregister', jobId: 'old', purge: false, time: 5, eval: newEval('e3', 'old', { triggeredBy: 'job-deregister', createTime: 5, modifyTime: 5 }) })
  applyOk({ type: 'PlanApply', evalId: 'e3', time: 6, newEvals: [], stop: [{ allocId: 'b1', description: 'job stopped' }], evalUpdate: done(6), place: [] })
  report('b1', 'complete', 7)
  applyOk({ type: 'JobDeregister', jobId: 'gone', purge: true, time: 8, eval: newEval('e7', 'gone', { triggeredBy: 'job-deregister', createTime: 8, modifyTime: 8 }) })
  applyOk({ type: 'PlanApply', evalId: 'e7', time: 8, newEvals: [], stop: [{ allocId: 'd1', description: 'job purged' }], evalUpdate: done(8), place: [] })
  report('d1', 'lost', 9)
  applyOk({ type: 'JobRegister', spec: spec('blocked', [group('fe', 1)]), time: 1, eval: newEval('e6', 'blocked', { status: 'blocked', createTime: 1, modifyTime: 1 }) })
  return s
}

const sorted = (t: { evals: string[]; allocs: string[]; jobs: string[] }) => ({ evals: [...t.evals].sort(), allocs: [...t.allocs].sort(), jobs: [...t.jobs].sort() })

test('collectable: finished and stopped things older than the cutoff; never what should run, nor pending or blocked evaluations', (t) => {
  const { state } = cluster()
  t.deepEqual(sorted(collectable(state, 100)), {
    evals: ['e2', 'e3', 'e5', 'e7'], // e1 and e4 placed allocations still wanted; e6 is blocked
    allocs: ['b1', 'd1'], // a1 runs; c1 failed but still holds its slot
    jobs: ['old'],
  })
  t.deepEqual(sorted(collectable(state, 6)), { evals: ['e3'], allocs: [], jobs: [] }, 'b1 finished at 7: it, e2 that placed it, and old are kept')
  t.deepEqual(sorted(collectable(state, 0)), { evals: [], allocs: [], jobs: [] })
})

test('StateGc removes the targets, and a stopped job with its versions; what is no longer collectable when it applies stays', (t) => {
  const { state, applyOk } = cluster()
  const targets = collectable(state, 100)
  // Between the choice and the apply, "old" is registered again: it is not garbage any more.
  applyOk({ type: 'JobRegister', spec: spec('old', [group('fe', 1)]), time: 20, eval: newEval('e8', 'old', { createTime: 20, modifyTime: 20 }) })
  applyOk({ type: 'StateGc', ...targets, evals: [...targets.evals, 'e1', 'e6', 'e8', 'nope'], allocs: [...targets.allocs, 'a1', 'c1'], time: 30 })
  t.truthy(state.get('jobs', 'old'), 'registered again in between: kept')
  t.is(state.get('allocs', 'd1'), undefined)
  t.is(state.get('allocs', 'b1'), undefined, 'a garbage allocation goes, even when its job stays')
  for (const id of ['e2', 'e3', 'e5', 'e7']) t.is(state.get('evals', id), undefined, id)
  t.deepEqual(state.allocsOfJob('gone'), [], 'indexes follow')
  t.deepEqual(state.allocsOfNode('id-n1').map((a) => a.id).sort(), ['a1', 'c1'])
  t.deepEqual(state.evalsByStatus('complete').map((e) => e.id).sort(), ['e1', 'e4'])
  t.truthy(state.get('allocs', 'a1'), 'running: kept')
  t.truthy(state.get('allocs', 'c1'), 'failed but wanted: kept')
  t.truthy(state.get('evals', 'e1'), 'complete, but its allocation a1 runs: kept')
  t.truthy(state.get('evals', 'e6'), 'blocked: kept')
  t.truthy(state.get('evals', 'e8'), 'pending: kept')
  // The job stopped again and finished: collected with what it had.
  applyOk({ type: 'JobDeregister', jobId: 'old', purge: false, time: 40, eval: newEval('e9', 'old', { triggeredBy: 'job-deregister', createTime: 40, modifyTime: 40 }) })
  applyOk({ type: 'EvalUpdate', evalId: 'e8', status: 'complete', statusDescription: '', time: 40 })
  applyOk({ type: 'EvalUpdate', evalId: 'e9', status: 'complete', statusDescription: '', time: 40 })
  const again = collectable(state, 100)
  t.deepEqual(again.jobs, ['old'])
  applyOk({ type: 'StateGc', ...again, time: 101 })
  t.is(state.get('jobs', 'old'), undefined)
  t.deepEqual(state.jobVersions('old'), [], 'its versions too')
  t.deepEqual(state.evalsOfJob('old'), [])
})
