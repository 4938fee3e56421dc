import test from 'ava'
import { Fsm } from '../../src/fsm/index.ts'
import { applyCommand, StateStore, type Command } from '../../src/fsm/index.ts'
import { fsmStore, group, newEval, newNode, spec } from './fixtures.ts'

test('JobRegister creates version 0, an unchanged spec keeps it, a changed spec makes version 1', async (t) => {
  const fsm = new Fsm()
  const s = spec('web', [group('fe', 2)])
  await fsm.apply(1, { type: 'JobRegister', spec: s, time: 10, eval: newEval('e1', 'web') })
  t.is(fsm.state.get('jobs', 'web')?.version, 0)
  await fsm.apply(2, { type: 'JobRegister', spec: s, time: 11, eval: newEval('e2', 'web') })
  t.is(fsm.state.get('jobs', 'web')?.version, 0, 'same spec: no new version')
  t.is(fsm.state.get('evals', 'e2')?.createIndex, 2, 'but a new evaluation')
  await fsm.apply(3, { type: 'JobRegister', spec: spec('web', [group('fe', 3)]), time: 12, eval: newEval('e3', 'web') })
  const job = fsm.state.get('jobs', 'web')!
  t.is(job.version, 1)
  t.is(job.createIndex, 1)
  t.is(job.modifyIndex, 3)
  t.deepEqual(fsm.state.jobVersions('web').map((j) => j.version), [0, 1])
})

test('a refused command changes nothing but still advances the applied index', async (t) => {
  const fsm = new Fsm()
  const r = await fsm.apply(1, { type: 'JobDeregister', jobId: 'nope', purge: false, time: 1, eval: newEval('e1', 'nope') })
  t.like(r, { ok: false, code: 'not-found' })
  t.is(fsm.state.get('evals', 'e1'), undefined)
  t.is(fsm.appliedIndex, 1)
})

test('JobDeregister stops the job; with purge it removes the job and every version', (t) => {
  const state = new StateStore()
  const apply = (index: number, cmd: Parameters<typeof applyCommand>[2]) => {
    const { changes, result } = applyCommand(state, index, cmd)
    state.applyChanges(changes, index)
    return result
  }
  apply(1, { type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply(2, { type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 2, eval: newEval('e2', 'web') })
  apply(3, { type: 'JobDeregister', jobId: 'web', purge: false, time: 3, eval: newEval('e3', 'web') })
  t.true(state.get('jobs', 'web')?.stop)
  apply(4, { type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 4, eval: newEval('e4', 'web') })
  t.like(state.get('jobs', 'web'), { stop: false, version: 2 }, 're-running a stopped job makes a new version')
  apply(5, { type: 'JobDeregister', jobId: 'web', purge: true, time: 5, eval: newEval('e5', 'web') })
  t.is(state.get('jobs', 'web'), undefined)
  t.deepEqual(state.jobVersions('web'), [])
})

test('apply is deterministic: the same commands give the same state', (t) => {
  const run = () => {
    const state = new StateStore()
    const cmds: Command[] = [
      { type: 'NodeRegister', node: newNode('n1'), time: 1 },
      { type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 2, eval: newEval('e1', 'web') },
      { type: 'AllocClientUpdate', updates: [{ allocId: 'missing', clientStatus: 'running', clientDescription: '', taskStates: {} }], time: 3, evals: [] },
    ]
    cmds.forEach((c, i) => {
      const { changes } = applyCommand(state, i + 1, c)
      state.applyChanges(changes, i + 1)
    })
    return { nodes: state.list('nodes'), jobs: state.list('jobs'), evals: state.list('evals'), allocs: state.list('allocs') }
  }
  t.deepEqual(run(), run())
})

test('an unknown command type from the log is refused, not thrown', (t) => {
  const { result, changes } = applyCommand(new StateStore(), 1, { type: 'Bogus' } as never)
  t.like(result, { ok: false, code: 'invalid' })
  t.deepEqual(changes, [])
})

test('variables: put, check-and-set (0 = create only, N = at modify index N), delete', (t) => {
  const state = new StateStore()
  const apply = (index: number, cmd: Command) => {
    const { changes, result } = applyCommand(state, index, cmd)
    state.applyChanges(changes, index)
    return result
  }
  t.like(apply(1, { type: 'VarPut', path: 'a/b', value: 'one', cas: 0, time: 1 }), { ok: true })
  t.like(apply(2, { type: 'VarPut', path: 'a/b', value: 'two', cas: 0, time: 2 }), { ok: false, code: 'conflict', current: 1 })
  t.like(apply(3, { type: 'VarPut', path: 'a/b', value: 'three', cas: 2, time: 3 }), { ok: false, code: 'conflict', current: 1 })
  t.like(apply(4, { type: 'VarPut', path: 'a/b', value: 'four', cas: 1, time: 4 }), { ok: true })
  t.like(state.get('vars', 'a/b'), { value: 'four', createIndex: 1, modifyIndex: 4, createTime: 1, modifyTime: 4 })
  t.like(apply(5, { type: 'VarPut', path: 'a/b', value: 'five', time: 5 }), { ok: true }, 'no cas: last write wins')
  t.like(apply(6, { type: 'VarDelete', path: 'a/b', cas: 4, time: 6 }), { ok: false, code: 'conflict', current: 5 })
  t.like(apply(7, { type: 'VarDelete', path: 'a/b', cas: 5, time: 7 }), { ok: true })
  t.is(state.get('vars', 'a/b'), undefined)
  t.like(apply(8, { type: 'VarDelete', path: 'a/b', time: 8 }), { ok: false, code: 'not-found' })
})

test('snapshot and restore: the whole state moves between stores, replacing what was there', async (t) => {
  const a = new Fsm()
  const b = new Fsm()
  await a.apply(1, { type: 'NodeRegister', node: newNode('n1'), time: 1 })
  await a.apply(2, { type: 'VarPut', path: 'x', value: 'from a', time: 2 })
  await b.apply(1, { type: 'VarPut', path: 'only-in-b', value: 'gone after restore', time: 1 })
  const restored: number[] = []
  b.on('restored', (i) => restored.push(i))
  const snap = await a.snapshot()
  t.is(snap.index, 2)
  t.is(await b.restore(snap.data), 2)
  t.deepEqual(restored, [2])
  t.is(b.appliedIndex, 2)
  t.is(b.state.get('vars', 'x')?.value, 'from a')
  t.is(b.state.get('nodes', 'id-n1')?.name, 'n1')
  t.is(b.state.get('vars', 'only-in-b'), undefined)
  await t.throwsAsync(b.restore(new Uint8Array([1, 2, 3])), { message: /malformed snapshot/ })
  t.is(b.state.get('vars', 'x')?.value, 'from a', 'a malformed snapshot changes nothing')
  await t.throwsAsync(b.apply(2, { type: 'VarPut', path: 'y', value: 'late', time: 3 }), { message: /already applied/ })
})
test('PlanApply moves allocations to a new job version in place', (t) => {
  const state = new StateStore()
  const apply = (index: number, cmd: Command) => {
    const { changes, result } = applyCommand(state, index, cmd)
    state.applyChanges(changes, index)
    return result
  }
  apply(1, { type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply(2, { type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  apply(3, {
    type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], stop: [],
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 2 },
    place: [{
      id: 'a1', name: 'web.fe[0]', jobId: 'web', jobVersion: 0, group: 'fe', index: 0, nodeId: 'id-n1', evalId: 'e1',
      desiredStatus: 'run', desiredDescription: '', clientStatus: 'running', clientDescription: '', taskStates: {},
      resources: { cpu: 100, memoryMB: 64, ports: [] }, rescheduleCount: 0, createTime: 2, modifyTime: 2,
    }],
  })
  apply(4, { type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 3, eval: newEval('e2', 'web') })
  apply(5, {
    type: 'PlanApply', evalId: 'e2', time: 4, newEvals: [], stop: [], place: [], inPlace: [{ allocId: 'a1', jobVersion: 1 }],
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 4 },
  })
  t.like(state.get('allocs', 'a1'), { jobVersion: 1, clientStatus: 'running', createIndex: 3, modifyIndex: 5 })
})

test('applyBatch: many commands at once, each seeing the ones before it; listeners hear each', async (t) => {
  const fsm = new Fsm()
  const heard: number[] = []
  fsm.on('applied', (e) => heard.push(e.index))
  const results = await fsm.applyBatch([
    { index: 1, command: { type: 'VarPut', path: 'x', value: 'a', cas: 0, time: 1 } },
    { index: 2, command: { type: 'VarPut', path: 'x', value: 'b', cas: 0, time: 2 } },
    { index: 3, command: { type: 'VarPut', path: 'x', value: 'c', cas: 1, time: 3 } },
  ])
  t.deepEqual(results.map((r) => r.ok), [true, false, true], 'the second sees the first: create-only fails')
  t.deepEqual(heard, [1, 2, 3])
  t.is(fsm.state.get('vars', 'x')?.value, 'c')
  t.is(fsm.appliedIndex, 3)
})

test('a large state snapshots without blocking the event loop for long', async (t) => {
  const fsm = new Fsm()
  await fsm.applyBatch(Array.from({ length: 20_000 }, (_, i) => ({ index: i + 1, command: { type: 'VarPut' as const, path: `k/${i}`, value: 'v'.repeat(64), time: i } })))
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const snap = await fsm.snapshot()
  clearInterval(timer)
  t.is(snap.index, 20_000)
  t.true(ticks > 0, 'timers ran while the snapshot was encoded')
  const other = new Fsm()
  t.is(await other.restore(snap.data), 20_000)
  t.is(other.state.list('vars').length, 20_000)
})

test('PlanApply is refused, changing nothing, when a placement would overcommit its node or its node is not ready', (t) => {
  const { state, apply } = fsmStore()
  apply({ type: 'NodeRegister', node: newNode('n1', { resources: { cpu: 300, memoryMB: 1024 } }), time: 0 })
  apply({ type: 'JobRegister', spec: spec('web', [group('fe', 3)]), time: 1, eval: newEval('e1', 'web') })
  const placed = (id: string, port: number, nodeId = 'id-n1') => ({
    id, name: `web.fe[${id}]`, jobId: 'web', jobVersion: 0, group: 'fe', index: 0, nodeId, evalId: 'e1',
    desiredStatus: 'run' as const, desiredDescription: '', clientStatus: 'pending' as const, clientDescription: '', taskStates: {},
    resources: { cpu: 100, memoryMB: 64, ports: [{ label: 'http', value: port, to: 80, hostIp: '127.0.0.1' }] }, rescheduleCount: 0, createTime: 1, modifyTime: 1,
  })
  const plan = (place: ReturnType<typeof placed>[], stop: string[] = []) => apply({
    type: 'PlanApply', evalId: 'e1', time: 2, newEvals: [], place, stop: stop.map((allocId) => ({ allocId, description: 'x' })),
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 2 },
  })
  t.like(plan([placed('a', 20001), placed('b', 20002), placed('c', 20003)]), { ok: true })
  const over = plan([placed('d', 20004)])
  t.like(over, { ok: false, code: 'conflict' })
  t.regex((over as { error: string }).error, /overcommitted on cpu \(400 > 300 MHz\)/)
  t.is(state.get('allocs', 'd'), undefined)
  t.like(plan([placed('e', 20001)], ['a']), { ok: true }, 'a stop in the same plan frees cpu and the port')
  t.like(plan([placed('f', 20005, 'nope')]), { ok: false, code: 'conflict' })
  apply({ type: 'NodeStatusUpdate', nodeId: 'id-n1', status: 'down', description: 'gone', time: 3, evals: [] })
  t.regex((plan([placed('g', 20006)]) as { error: string }).error, /node n1 is down/)
})

test('scaling history: a count change records its event with the new version; decisions are kept to the last 20; purge drops them; snapshots carry them', async (t) => {
  const fsm = new Fsm()
  const ev = (from: number, to: number, time: number) => ({ time, source: 'autoscaler' as const, from, to, reason: from === to ? 'within-target' as const : 'scaled' as const, message: `m${time}` })
  await fsm.apply(1, { type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 1, eval: newEval('e1', 'web') })
  const r = await fsm.apply(2, { type: 'JobRegister', spec: spec('web', [group('fe', 3)]), time: 2, eval: newEval('e2', 'web'), checkIndex: 1, scalingEvent: { group: 'fe', event: ev(1, 3, 2) } })
  t.true(r.ok)
  t.deepEqual(fsm.state.get('scalingEvents', 'web/fe')?.events, [{ ...ev(1, 3, 2), jobVersion: 1 }])
  for (let i = 0; i < 25; i++) {
    await fsm.apply(3 + i, { type: 'ScalingEventRecord', jobId: 'web', scalingEvent: { group: 'fe', event: ev(3, 3, 100 + i) }, time: 100 + i })
  }
  const kept = fsm.state.get('scalingEvents', 'web/fe')!.events
  t.is(kept.length, 20)
  t.is(kept.at(-1)!.time, 124)
  t.is(kept[0]!.time, 105)
  const bad = await fsm.apply(28, { type: 'ScalingEventRecord', jobId: 'web', scalingEvent: { group: 'nope', event: ev(1, 1, 1) }, time: 1 })
  t.like(bad, { ok: false, code: 'not-found' })
  const stale = await fsm.apply(29, { type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 3, eval: newEval('e3', 'web'), checkIndex: 1, scalingEvent: { group: 'fe', event: ev(3, 2, 3) } })
  t.like(stale, { ok: false, code: 'conflict' })
  t.is(fsm.state.get('scalingEvents', 'web/fe')!.events.length, 20, 'a refused change records nothing')

  const snap = await fsm.snapshot()
  const other = new Fsm()
  await other.restore(snap.data)
  t.deepEqual(other.state.get('scalingEvents', 'web/fe'), fsm.state.get('scalingEvents', 'web/fe'))

  await fsm.apply(30, { type: 'JobDeregister', jobId: 'web', purge: true, time: 4, eval: newEval('e4', 'web') })
  t.is(fsm.state.get('scalingEvents', 'web/fe'), undefined)
})
