import test from 'ava'
import { cluster, changeConf, commit, ids, Sim, waitLeader } from './sim.ts'

test('add a learner, let it catch up, promote it: it then counts towards the quorum', (t) => {
  const sim = cluster(3, { seed: 70, spares: ['s1'] })
  const l = waitLeader(sim).id
  for (let i = 0; i < 5; i++) commit(sim, `a${i}`)
  t.is(sim.core('s1').role, 'follower')
  t.deepEqual(sim.core('s1').confState(), { voters: [], learners: [] }, 'a spare knows nothing yet')
  changeConf(sim, { type: 'addLearner', nodeId: 's1' })
  commit(sim, 'b', ['n1', 'n2', 'n3', 's1'])
  t.deepEqual(sim.node('s1').sm.values, sim.node(l).sm.values)
  t.deepEqual(sim.core('s1').confState(), { voters: ['n1', 'n2', 'n3'], learners: ['s1'] })
  changeConf(sim, { type: 'promote', nodeId: 's1' })
  for (const id of ['n1', 'n2', 'n3', 's1']) {
    t.deepEqual(sim.core(id).confState(), { voters: ['n1', 'n2', 'n3', 's1'], learners: [] }, id)
  }
  // 4 voters, quorum 3: with one original voter down, progress needs s1's acks.
  const [other] = ['n1', 'n2', 'n3'].filter((id) => id !== sim.leader()!.id)
  sim.crash(other!)
  commit(sim, 'c')
  // Two down: no quorum any more.
  const [another] = ['n1', 'n2', 'n3'].filter((id) => id !== sim.leader()!.id && id !== other)
  sim.crash(another!)
  const r = sim.propose(undefined, 'd')
  sim.run(300)
  t.true(r === null || !sim.isApplied('d'))
  sim.settle()
})

test('conf changes: one at a time, only after the leader committed in its term, validated', (t) => {
  const sim = cluster(3, { seed: 71, spares: ['s1', 's2'] })
  sim.runUntil(() => sim.leader() !== undefined, 500, 'a leader')
  const l = sim.leader()!.core!
  t.true(l.commitIndex < l.lastIndex, 'the no-op is not committed yet')
  const early = l.proposeConfChange({ type: 'addLearner', nodeId: 's1' })
  t.like(early, { ok: false, error: 'notReady' })
  commit(sim, 'x')
  t.like(l.proposeConfChange({ type: 'addLearner', nodeId: 's1' }), { ok: true })
  t.like(l.proposeConfChange({ type: 'addLearner', nodeId: 's2' }), { ok: false, error: 'confChangePending' })
  sim.run(20)
  t.like(l.proposeConfChange({ type: 'promote', nodeId: 'n1' }), { ok: false, error: 'invalidConfChange' })
  t.like(l.proposeConfChange({ type: 'remove', nodeId: 'zz' }), { ok: false, error: 'invalidConfChange' })
  t.like(l.proposeConfChange({ type: 'addLearner', nodeId: 's1' }), { ok: false, error: 'invalidConfChange' })
  t.like(l.proposeConfChange({ type: 'addLearner', nodeId: 's2' }), { ok: true })
  const f = sim.nodes.get(sim.members().find((id) => id !== l.id)!)!.core!
  t.like(f.proposeConfChange({ type: 'remove', nodeId: 's1' }), { ok: false, error: 'notLeader', leader: l.id })

  const solo = cluster(1, { seed: 72 })
  const s = waitLeader(solo).core!
  commit(solo, 'y')
  t.like(s.proposeConfChange({ type: 'remove', nodeId: 'n1' }), { ok: false, error: 'invalidConfChange' })
  t.like(s.proposeConfChange({ type: 'demote', nodeId: 'n1' }), { ok: false, error: 'invalidConfChange' })
})

test('demote a voter: it keeps replicating but never campaigns', (t) => {
  const sim = cluster(3, { seed: 73 })
  const l = waitLeader(sim).id
  const d = sim.members().find((id) => id !== l)!
  commit(sim, 'a')
  changeConf(sim, { type: 'demote', nodeId: d })
  commit(sim, 'b', [...sim.members()])
  t.deepEqual(sim.core(d).confState().learners, [d])
  t.true(sim.node(d).sm.values.includes('b'))
  // Leader + learner left: 2 voters, the learner cannot stand in for the crashed one.
  const other = sim.members().find((id) => id !== l && id !== d)!
  sim.crash(other)
  sim.crash(l)
  sim.run(800)
  t.is(sim.core(d).role, 'follower')
  t.is(sim.leaders().length, 0)
  sim.settle()
})

test('remove a follower: the cluster shrinks and the removed node cannot disrupt it', (t) => {
  const sim = cluster(5, { seed: 74 })
  const l = waitLeader(sim)
  const r = sim.members().find((id) => id !== l.id)!
  commit(sim, 'a')
  changeConf(sim, { type: 'remove', nodeId: r })
  const term = sim.leader()!.core!.term
  commit(sim, 'b')
  t.false(sim.node(r).sm.values.includes('b'), 'no entries after its removal reach it')
  sim.run(1000) // the removed node times out and (pre-)campaigns repeatedly
  t.is(sim.leader()!.core!.term, term, 'the cluster term did not move')
  t.not(sim.core(r).role, 'leader')
  // Quorum is now 3 of 4: two more crashes stop progress.
  const rest = sim.members().filter((id) => id !== sim.leader()!.id)
  t.is(rest.length, 3)
  sim.crash(rest[0]!)
  commit(sim, 'c')
  sim.settle()
})

test('remove the leader: it hands over and steps down once the change commits', (t) => {
  const sim = cluster(5, { seed: 75 })
  const l = waitLeader(sim).id
  commit(sim, 'a')
  const res = sim.confChange({ type: 'remove', nodeId: l })
  t.like(res, { ok: true })
  // While the removal is uncommitted it still leads (without counting itself).
  t.is(sim.core(l).role, 'leader')
  t.deepEqual(sim.core(l).confState().voters.includes(l), false)
  const steps = sim.runUntil(() => sim.leader() !== undefined && sim.leader()!.id !== l, 100, 'a new leader')
  t.true(steps < 30, `handover took ${steps} steps (TimeoutNow, not an election timeout)`)
  t.not(sim.core(l).role, 'leader')
  commit(sim, 'b')
  t.is(sim.members().length, 4)
  sim.run(800)
  t.not(sim.core(l).role, 'leader')
  t.is(sim.leaders().length, 1)
  sim.settle()
})

test('a node whose uncommitted conf change is truncated reverts its configuration', (t) => {
  const sim = cluster(5, { seed: 76, spares: ['s1'] })
  const l = waitLeader(sim).id
  commit(sim, 'base')
  const [f1, ...rest] = sim.members().filter((id) => id !== l)
  sim.partition([l, f1!], rest, ['s1'])
  t.like(sim.confChange({ type: 'addLearner', nodeId: 's1' }, l), { ok: true })
  sim.runUntil(() => sim.core(f1!).confState().learners.includes('s1'), 50, 'f1 to append the change')
  waitLeader(sim, 1000, rest)
  commit(sim, 'majority', rest)
  sim.heal()
  commit(sim, 'after')
  for (const id of [l, f1!]) t.deepEqual(sim.core(id).confState(), { voters: ['n1', 'n2', 'n3', 'n4', 'n5'], learners: [] }, id)
  sim.settle()
})

test('grow 3 -> 5 and shrink back to 3 (removing the original leader) on a lossy network', (t) => {
  for (let seed = 77; seed < 81; seed++) {
    const sim = new Sim({
      seed, voters: ids(3), spares: ['s1', 's2'], compactEvery: 6,
      net: { drop: 0.05, duplicate: 0.05, minDelay: 1, maxDelay: 3 },
    })
    const first = waitLeader(sim).id
    let k = 0
    const write = () => commit(sim, `w${seed}-${k++}`)
    write()
    changeConf(sim, { type: 'addLearner', nodeId: 's1' })
    write()
    changeConf(sim, { type: 'promote', nodeId: 's1' })
    changeConf(sim, { type: 'addLearner', nodeId: 's2' })
    write()
    changeConf(sim, { type: 'promote', nodeId: 's2' })
    write()
    t.is(sim.leader()!.core!.confState().voters.length, 5)
    changeConf(sim, { type: 'remove', nodeId: first })
    write()
    const second = ['n1', 'n2', 'n3'].find((id) => id !== first)!
    changeConf(sim, { type: 'remove', nodeId: second })
    write()
    const voters = sim.leader()!.core!.confState().voters
    t.deepEqual(voters, ['n1', 'n2', 'n3', 's1', 's2'].filter((id) => id !== first && id !== second))
    sim.settle()
    for (const id of voters) t.is(sim.node(id).sm.values.length, k + 1, `${id} has every write (+ settle)`)
  }
})
