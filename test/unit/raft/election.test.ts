import test from 'ava'
import type { Message } from '../../../src/raft/index.ts'
import { cluster, commit, waitLeader } from './sim.ts'

test('initial election: one leader, recognised by all, and it stays put', (t) => {
  for (const n of [1, 3, 5]) {
    const sim = cluster(n, { seed: 10 + n })
    const l = waitLeader(sim, 200)
    const term = l.core!.term
    sim.run(500)
    t.is(sim.leader()?.id, l.id, `${n} nodes: leader changed without faults`)
    t.is(sim.leader()!.core!.term, term, `${n} nodes: term changed without faults`)
    t.is(sim.leaders().length, 1)
  }
})

test('re-election after the leader crashes; the old leader rejoins as follower', (t) => {
  const sim = cluster(5, { seed: 2 })
  const l1 = waitLeader(sim)
  commit(sim, 'a')
  sim.crash(l1.id)
  const l2 = waitLeader(sim)
  t.not(l2.id, l1.id)
  t.true(l2.core!.term > 1)
  commit(sim, 'b')
  sim.restart(l1.id)
  commit(sim, 'c')
  t.is(sim.core(l1.id).role, 'follower')
  t.is(sim.core(l1.id).leader, l2.id)
  sim.settle()
})

test('no leader without a quorum, with or without PreVote', (t) => {
  for (const preVote of [true, false]) {
    const sim = cluster(5, { seed: 3, preVote, checkQuorum: preVote })
    const l = waitLeader(sim)
    const others = sim.members().filter((id) => id !== l.id)
    sim.crash(l.id)
    sim.crash(others[0]!)
    sim.crash(others[1]!)
    sim.run(1500)
    t.is(sim.leaders().length, 0, `preVote=${preVote}`)
    sim.restart(others[0]!)
    waitLeader(sim)
    sim.settle()
  }
})

test('PreVote: a partitioned follower does not disrupt the cluster when it rejoins', (t) => {
  const sim = cluster(3, { seed: 4 })
  const l = waitLeader(sim)
  const term = l.core!.term
  const f = sim.members().find((id) => id !== l.id)!
  sim.isolate(f)
  sim.run(600) // ~30 election timeouts
  t.is(sim.core(f).term, term, 'PreVote keeps the isolated node from inflating its term')
  t.not(sim.core(f).role, 'leader')
  sim.heal()
  sim.run(200)
  t.is(sim.leader()?.id, l.id, 'leader survives the rejoin')
  t.is(sim.leader()!.core!.term, term)
  t.is(sim.core(f).leader, l.id)
})

test('without PreVote the same rejoin does depose the leader (contrast)', (t) => {
  const sim = cluster(3, { seed: 4, preVote: false, checkQuorum: false })
  const l = waitLeader(sim)
  const term = l.core!.term
  const f = sim.members().find((id) => id !== l.id)!
  sim.isolate(f)
  sim.run(600)
  t.true(sim.core(f).term > term + 5, 'the isolated node kept bumping its term')
  sim.heal()
  sim.run(200)
  t.true(waitLeader(sim).core!.term > term, 'its term forced a new election')
})

test('CheckQuorum: an isolated leader steps down within an election timeout or two', (t) => {
  const sim = cluster(5, { seed: 5 })
  const l = waitLeader(sim)
  sim.isolate(l.id)
  const stepsPerTick = 2
  const steps = sim.runUntil(() => sim.core(l.id).role !== 'leader', 2 * 10 * stepsPerTick + 5, 'the old leader to step down')
  t.true(steps <= 2 * 10 * stepsPerTick + 5)
  const l2 = waitLeader(sim, 1000, sim.members().filter((id) => id !== l.id))
  t.not(l2.id, l.id)
  sim.heal()
  sim.settle()
})

test('without CheckQuorum an isolated leader keeps believing it leads (contrast)', (t) => {
  const sim = cluster(5, { seed: 5, checkQuorum: false })
  const l = waitLeader(sim)
  sim.isolate(l.id)
  sim.run(400)
  t.is(sim.core(l.id).role, 'leader')
  t.is(sim.leaders().length, 2, 'an isolated stale leader and the new one (different terms)')
  sim.settle()
})

test('leadership transfer hands over promptly and refuses proposals meanwhile', (t) => {
  const sim = cluster(5, { seed: 6 })
  const l = waitLeader(sim)
  commit(sim, 'a')
  const target = sim.members().find((id) => id !== l.id)!
  t.deepEqual(l.core!.transferLeadership(target), { ok: true })
  const r = l.core!.propose(new Uint8Array([1]))
  t.false(r.ok)
  if (!r.ok) t.is(r.error, 'transferInProgress')
  const steps = sim.runUntil(() => sim.leader()?.id === target, 40, 'the transfer')
  t.true(steps < 20, `took ${steps} steps, should not wait for an election timeout`)
  commit(sim, 'b')
  t.is(sim.leader()!.id, target)
})

test('leadership transfer to a lagging node catches it up first', (t) => {
  const sim = cluster(3, { seed: 7 })
  const l = waitLeader(sim)
  const target = sim.members().find((id) => id !== l.id)!
  sim.crash(target)
  for (let i = 0; i < 30; i++) sim.propose(l.id, `x${i}`)
  commit(sim, 'x-last', [l.id])
  sim.restart(target)
  t.true(sim.core(target).lastIndex < l.core!.lastIndex)
  t.true(l.core!.transferLeadership(target).ok)
  sim.runUntil(() => sim.leader()?.id === target, 200, 'the transfer')
  t.true(sim.isApplied('x-last'))
  sim.settle()
  t.true(sim.node(target).sm.values.includes('x29'))
})

test('leadership transfer to an unreachable node is aborted after an election timeout', (t) => {
  const sim = cluster(3, { seed: 8 })
  const l = waitLeader(sim)
  const target = sim.members().find((id) => id !== l.id)!
  sim.crash(target)
  t.true(l.core!.transferLeadership(target).ok)
  t.is(l.core!.transferee, target)
  sim.run(2 * 10 * 2 + 4)
  t.is(l.core!.role, 'leader')
  t.is(l.core!.transferee, null)
  t.true(l.core!.propose(new Uint8Array([1])).ok)
  const bad = l.core!.transferLeadership('nobody')
  t.false(bad.ok)
  if (!bad.ok) t.is(bad.error, 'notVoter')
})

test('learners never campaign, are never asked to vote, and do not make a quorum', (t) => {
  const sim = cluster(3, { seed: 9, learners: ['l1', 'l2'] })
  const learners = new Set(['l1', 'l2'])
  const bad: Message[] = []
  sim.filter = (m) => {
    if (m.type === 'requestVote' && (learners.has(m.from) || learners.has(m.to))) bad.push(m)
    return true
  }
  const l = waitLeader(sim)
  commit(sim, 'a', ['n1', 'n2', 'n3', 'l1', 'l2'])
  // Kill two voters: the learners are up to date but must not help elect or commit.
  const voters = ['n1', 'n2', 'n3'].filter((id) => id !== l.id)
  sim.crash(voters[0]!)
  sim.crash(voters[1]!)
  const r = sim.propose(l.id, 'b')
  t.true(r?.ok)
  sim.run(300)
  t.false(sim.isApplied('b'), 'an entry acked only by the leader and learners must not commit')
  sim.crash(l.id)
  sim.run(1000)
  t.is(sim.leaders().length, 0)
  for (const id of learners) t.is(sim.core(id).role, 'follower')
  t.deepEqual(bad, [])
  sim.settle()
})
