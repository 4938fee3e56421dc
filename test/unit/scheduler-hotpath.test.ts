// The scheduler's hot path: the bounded, shuffled walk over the nodes, the
// state's usage and evaluation indexes it reads, and the broker's pipelined
// plans. Behaviour stays that of the full scan where the full scan is cheap
// (every feasible node within the limit), and exact where it must be
// (failures count every node).
import test from 'ava'
import { EvalBroker, PlannedPlacements, schedulerView, viewWithPlacements } from '../../src/agent/leader.ts'
import type { Proposer } from '../../src/agent/proposer.ts'
import { applyCommand, StateStore, type Command } from '../../src/fsm/index.ts'
import { Fsm } from '../../src/fsm/fsm.ts'
import { schedule, UsageTracker } from '../../src/scheduler/index.ts'
import { groupRules } from '../../src/scheduler/rules.ts'
import { rankLimit, shuffledOrder } from '../../src/scheduler/select.ts'
import type { Node } from '../../src/structs/index.ts'
import { isLive } from '../../src/structs/index.ts'
import { alloc, evaluation, group, idSource, job, newEval, newNode, node, schedulerState, spec } from './fixtures.ts'


function store(): { state: StateStore; apply(cmd: Command): void } {
  const state = new StateStore()
  let index = 0
  return {
    state,
    apply(cmd) {
      const r = applyCommand(state, ++index, cmd)
      // A plan the FSM refuses (it would overcommit a node) changes nothing: a legitimate outcome here.
      if (!r.result.ok && !(cmd.type === 'PlanApply' && r.result.code === 'conflict')) throw new Error(r.result.error)
      state.applyChanges(r.changes, index)
    },
  }
}

const bigNode = (i: number, over: Partial<Node> = {}) =>
  node(`n${String(i).padStart(3, '0')}`, { resources: { cpu: 4000, memoryMB: 4096 }, portRange: { min: 20000, max: 20100 }, ...over })

test('rank limit: log2 of the cluster for service jobs (at least 2), 2 for batch, max(count, 100) with affinities or spreads', (t) => {
  const plain = groupRules('web', group('fe', 3))
  t.is(rankLimit('service', plain, 1), 2)
  t.is(rankLimit('service', plain, 4), 2)
  t.is(rankLimit('service', plain, 5), 3)
  t.is(rankLimit('service', plain, 5000), 13)
  t.is(rankLimit('batch', plain, 5000), 2)
  const preferring = groupRules('web', { ...group('fe', 300), affinities: [{ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 50 }] })
  t.is(rankLimit('service', preferring, 5000), 300)
  t.is(rankLimit('service', groupRules('web', { ...group('fe', 3), spreads: [{ attribute: '${meta.rack}', weight: 50, targets: [] }] }), 5000), 100)
})

test('the shuffle is a permutation that depends only on the seed', (t) => {
  const a = shuffledOrder(1000, 'eval-1')
  t.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i))
  t.deepEqual(shuffledOrder(1000, 'eval-1'), a)
  t.notDeepEqual(shuffledOrder(1000, 'eval-2'), a)
})

test('on a large cluster placements stay valid and deterministic, and use many nodes', (t) => {
  const nodes = Array.from({ length: 300 }, (_, i) => bigNode(i, { meta: { rack: `r${i % 10}` } }))
  const g = { ...group('fe', 200), constraints: [{ attribute: '${meta.rack}', operator: '!=' as const, value: 'r3' }] }
  const st = schedulerState([job(spec('web', [g]))], nodes)
  const plan = schedule(st, evaluation('e1', 'web'), { now: 0, newId: idSource() })
  t.deepEqual(schedule(st, evaluation('e1', 'web'), { now: 0, newId: idSource() }), plan, 'same state and evaluation, same plan')
  t.is(plan.place.length, 200)
  const byId = new Map(nodes.map((n) => [n.id, n]))
  t.true(plan.place.every((a) => byId.get(a.nodeId)!.meta.rack !== 'r3'))
  t.true(new Set(plan.place.map((a) => a.nodeId)).size > 10, 'the walk moves on from placement to placement')
  const other = schedule(st, evaluation('e2', 'web'), { now: 0, newId: idSource() })
  t.notDeepEqual(other.place.map((a) => a.nodeId), plan.place.map((a) => a.nodeId), 'another evaluation walks the nodes in another order')
})

test('when nothing fits, every node is evaluated and counted, in node order, once for the group', (t) => {
  const nodes = Array.from({ length: 500 }, (_, i) => bigNode(i, { meta: { rack: `r${i % 5}` }, ...(i % 50 === 0 ? { status: 'down' as const } : {}) }))
  const g = { ...group('fe', 40), constraints: [{ attribute: '${meta.rack}', operator: '=' as const, value: 'r9' }] }
  const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), { now: 0, newId: idSource() })
  const f = plan.evalUpdate.failedGroups.fe!
  t.is(f.unplaced, 40)
  t.is(f.nodesEvaluated, 500)
  t.deepEqual(f.filtered, { 'node not ready': 10, 'constraint ${meta.rack} = r9': 490 })
  t.deepEqual(f.details.slice(0, 2), ['node n000: status down', 'node n001: ${meta.rack} is "r1" (constraint ${meta.rack} = r9)'])
  t.is(plan.desiredUpdates.fe!.create, 40)
})

test('a group that fills the cluster places what fits and counts the rest with exhausted reasons over all nodes', (t) => {
  const nodes = Array.from({ length: 64 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, { resources: { cpu: 1000, memoryMB: 1024 }, portRange: { min: 20000, max: 20100 } }))
  const g = group('fe', 300)
  g.tasks[0]!.resources = { cpu: 250, memoryMB: 100 }
  const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), { now: 0, newId: idSource() })
  t.is(plan.place.length, 256, 'four per node, every node full')
  const f = plan.evalUpdate.failedGroups.fe!
  t.is(f.unplaced, 44)
  t.like(f, { nodesEvaluated: 64, exhausted: { cpu: 64 } })
})

test('the state keeps per-node usage equal to summing the live allocations, through any changes', (t) => {
  const st = store()
  const nodes = [newNode('a'), newNode('b'), newNode('c')]
  for (const n of nodes) st.apply({ type: 'NodeRegister', node: n, time: 0 })
  const j = job(spec('web', [group('fe', 1), group('be', 1)]))
  st.apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1), group('be', 1)]), time: 0, eval: newEval('e0', 'web') })
  let seed = 7
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const ids: string[] = []
  for (let step = 0; step < 300; step++) {
    const roll = rand(4)
    if (roll < 2 || ids.length === 0) {
      const id = `x${step}`
      ids.push(id)
      const a = alloc(id, j, rand(2) ? 'fe' : 'be', step, `id-${'abc'[rand(3)]}`, { resources: { cpu: 1 + rand(50), memoryMB: 1 + rand(50), ports: [{ label: 'http', value: 20000 + rand(20), to: 80, hostIp: '' }] } })
      const { createIndex: _c, modifyIndex: _m, ...placed } = a
      st.apply({ type: 'PlanApply', evalId: 'e0', place: [placed], stop: [], newEvals: [], time: 0, evalUpdate: { status: 'pending', statusDescription: '', failedGroups: {}, modifyTime: 0 } })
    } else if (roll === 2) {
      st.apply({ type: 'PlanApply', evalId: 'e0', place: [], stop: [{ allocId: ids[rand(ids.length)]!, description: 'x', ...(rand(2) ? { lost: true } : {}) }], newEvals: [], time: 0, evalUpdate: { status: 'pending', statusDescription: '', failedGroups: {}, modifyTime: 0 } })
    } else {
      st.apply({ type: 'AllocClientUpdate', updates: [{ allocId: ids[rand(ids.length)]!, clientStatus: (['running', 'failed', 'complete'] as const)[rand(3)]!, clientDescription: '', taskStates: {} }], evals: [], time: 0 })
    }
    for (const n of nodes) {
      const live = st.state.allocsOfNode(n.id).filter(isLive)
      const u = st.state.nodeUsage(n.id)
      const ports = new Set(live.flatMap((a) => a.resources.ports.map((p) => p.value)))
      const groups = new Map<string, number>()
      for (const a of live) groups.set(`${a.jobId}/${a.group}`, (groups.get(`${a.jobId}/${a.group}`) ?? 0) + 1)
      const got = { cpu: u?.cpu ?? 0, memoryMB: u?.memoryMB ?? 0, ports: new Set(u?.ports ?? []), jobGroups: new Map(u?.jobGroups ?? []) }
      const want = { cpu: live.reduce((s, a) => s + a.resources.cpu, 0), memoryMB: live.reduce((s, a) => s + a.resources.memoryMB, 0), ports, jobGroups: groups }
      if (!t.deepEqual(got, want, `step ${step}, node ${n.name}`)) return
    }
  }
})

test('evaluations by job and by status follow updates', (t) => {
  const st = store()
  st.apply({ type: 'NodeRegister', node: newNode('a'), time: 0 })
  st.apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 0, eval: newEval('e1', 'web') })
  st.apply({ type: 'JobRegister', spec: spec('api', [group('fe', 1)]), time: 0, eval: newEval('e2', 'api') })
  st.apply({ type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 0, eval: newEval('e3', 'web') })
  t.deepEqual(st.state.evalsOfJob('web').map((e) => e.id).sort(), ['e1', 'e3'])
  t.deepEqual(st.state.evalsByStatus('pending').map((e) => e.id).sort(), ['e1', 'e2', 'e3'])
  st.apply({ type: 'EvalUpdate', evalId: 'e1', status: 'complete', statusDescription: '', time: 0 })
  st.apply({ type: 'EvalUpdate', evalId: 'e2', status: 'blocked', statusDescription: '', time: 0 })
  t.deepEqual(st.state.evalsByStatus('pending').map((e) => e.id), ['e3'])
  t.deepEqual(st.state.evalsByStatus('blocked').map((e) => e.id), ['e2'])
  t.deepEqual(st.state.evalsByStatus('complete').map((e) => e.id), ['e1'])
  t.deepEqual(st.state.evalsOfJob('nope'), [])
})

test('schedule() makes the same plan from the state indexes as from summing allocations', (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const st = store()
    for (let i = 0; i < 30; i++) st.apply({ type: 'NodeRegister', node: newNode(`n${i}`, { resources: { cpu: 2000, memoryMB: 2048 }, portRange: { min: 20000, max: 20050 }, meta: { rack: `r${i % 3}` } }), time: 0 })
    const jobs = ['a', 'b', 'c'].map((id, k) => spec(id, [{ ...group('g', 10 + ((seed * (k + 1)) % 25)), constraints: k === 1 ? [{ attribute: '${meta.rack}', operator: 'distinct_property', value: '12' }] : [] }]))
    for (const s of jobs) {
      st.apply({ type: 'JobRegister', spec: s, time: 0, eval: newEval(`e-${s.id}`, s.id) })
      const ev = st.state.get('evals', `e-${s.id}`)!
      const indexed = schedulerView(st.state)
      const { nodeUsage: _, ...summing } = indexed
      const plan = schedule(indexed, ev, { now: 0, newId: idSource(`${s.id}-`) })
      t.deepEqual(schedule(summing, ev, { now: 0, newId: idSource(`${s.id}-`) }), plan, `seed ${seed} job ${s.id}`)
      st.apply({ type: 'PlanApply', evalId: ev.id, place: plan.place, stop: plan.stop, inPlace: plan.inPlace, evalUpdate: plan.evalUpdate, newEvals: plan.newEvals, time: 0 })
    }
  }
})

test('UsageTracker: a stop frees capacity whether or not the node was read before', (t) => {
  const j = job(spec('web', [group('fe', 2)]))
  const a = alloc('x', j, 'fe', 0, 'id-n1')
  const n = node('n1')
  const st = store()
  st.apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  st.apply({ type: 'JobRegister', spec: spec('web', [group('fe', 2)]), time: 0, eval: newEval('e0', 'web') })
  const { createIndex: _c, modifyIndex: _m, ...placed } = a
  st.apply({ type: 'PlanApply', evalId: 'e0', place: [placed], stop: [], newEvals: [], time: 0, evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 0 } })
  const stored = st.state.get('allocs', 'x')!
  for (const readFirst of [true, false]) {
    const u = new UsageTracker((id) => st.state.allocsOfNode(id), (id) => st.state.nodeUsage(id))
    if (readFirst) t.is(u.usage(n).cpu, 100)
    u.stop(stored)
    t.is(u.usage(n).cpu, 0, `read first: ${readFirst}`)
    t.false(u.usage(n).ports.has(20000))
    u.place(n, { jobId: 'web', group: 'fe', resources: { cpu: 30, memoryMB: 10, ports: [] } })
    t.is(u.usage(n).cpu, 30)
    t.is(st.state.nodeUsage('id-n1')!.cpu, 100, 'the state is not changed by a plan')
  }
})

test('placements in flight count as placed: capacity, ports and allocations; once applied they count once', (t) => {
  const st = store()
  st.apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  st.apply({ type: 'JobRegister', spec: spec('web', [group('fe', 1)]), time: 0, eval: newEval('e0', 'web') })
  const j = st.state.get('jobs', 'web')!
  const { createIndex: _c, modifyIndex: _m, ...inFlight } = alloc('x', j, 'fe', 0, 'id-n1', { resources: { cpu: 300, memoryMB: 200, ports: [{ label: 'http', value: 20003, to: 80, hostIp: '' }] } })
  const view = viewWithPlacements(st.state, [new PlannedPlacements([inFlight])])
  t.like(view.nodeUsage!('id-n1'), { cpu: 300, memoryMB: 200 })
  t.true(view.nodeUsage!('id-n1')!.ports.has(20003))
  t.deepEqual(view.allocsOfNode('id-n1').map((a) => a.id), ['x'])
  t.deepEqual(view.allocsOfJob('web').map((a) => a.id), ['x'])
  st.apply({ type: 'PlanApply', evalId: 'e0', place: [inFlight], stop: [], newEvals: [], time: 0, evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 0 } })
  const after = viewWithPlacements(st.state, [new PlannedPlacements([inFlight])])
  t.like(after.nodeUsage!('id-n1'), { cpu: 300, memoryMB: 200 })
  t.is(after.allocsOfNode('id-n1').length, 1)
})

test('the broker pipelines plans of different jobs without overcommitting: the second counts on the first while it commits', async (t) => {
  const fsm = new Fsm()
  // Commits take 30 ms each and apply in order, as under Raft.
  let index = 0
  let tail: Promise<unknown> = Promise.resolve()
  const proposer: Proposer = {
    propose: (cmd) => {
      const i = ++index
      const done = tail.then(() => new Promise((r) => setTimeout(r, 30))).then(() => fsm.apply(i, cmd))
      tail = done
      return done
    },
  }
  for (let i = 0; i < 4; i++) await proposer.propose({ type: 'NodeRegister', node: newNode(`n${i}`, { resources: { cpu: 1000, memoryMB: 1000 }, portRange: { min: 20000, max: 20003 } }), time: 0 })
  // Four nodes of four slots each (cpu and ports): exactly 16 allocations fit.
  const overlapped: boolean[] = []
  let committing = 0
  const broker = new EvalBroker(fsm, proposer, { info: () => undefined, warn: (m) => t.log(m) }, {
    scheduled: (i) => {
      overlapped.push(committing > 0)
      if (i.place > 0) committing++
    },
    committed: () => { committing-- },
  })
  broker.start()
  t.teardown(() => broker.stop())
  const g = (count: number) => {
    const x = group('fe', count)
    x.tasks[0]!.resources = { cpu: 250, memoryMB: 10 }
    return x
  }
  await Promise.all([
    proposer.propose({ type: 'JobRegister', spec: spec('a', [g(6)]), time: 0, eval: newEval('ea', 'a') }),
    proposer.propose({ type: 'JobRegister', spec: spec('b', [g(6)]), time: 0, eval: newEval('eb', 'b') }),
    proposer.propose({ type: 'JobRegister', spec: spec('c', [g(6)]), time: 0, eval: newEval('ec', 'c') }),
  ])
  const end = Date.now() + 10_000
  while (Date.now() < end && fsm.state.evalsByStatus('pending').length > 0) await new Promise((r) => setTimeout(r, 10))
  const live = fsm.state.list('allocs').filter(isLive)
  t.is(live.length, 16, 'every slot used once')
  for (const n of fsm.state.list('nodes')) {
    const on = live.filter((a) => a.nodeId === n.id)
    t.true(on.reduce((s, a) => s + a.resources.cpu, 0) <= n.resources.cpu, `${n.name} not overcommitted`)
    t.is(new Set(on.map((a) => a.resources.ports[0]!.value)).size, on.length, `${n.name}: no port twice`)
  }
  t.is(fsm.state.evalsByStatus('blocked').length, 1, 'the job that did not fit is blocked')
  t.true(overlapped.some(Boolean), 'an evaluation was scheduled while another plan was committing')
})
