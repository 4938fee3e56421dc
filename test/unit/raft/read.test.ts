import test from 'ava'
import { cluster, commit, ids, Sim, waitLeader } from './sim.ts'

test('ReadIndex returns an index covering every write acknowledged before it started', (t) => {
  const sim = cluster(3, { seed: 80 })
  const l = waitLeader(sim)
  for (let i = 0; i < 10; i++) commit(sim, `w${i}`)
  const last = sim.proposed.get('w9')!.index
  const rid = sim.read(l.id)!
  sim.runUntil(() => l.readStates.some((r) => r.requestId === rid), 20, 'the read to be confirmed')
  const rs = l.readStates.find((r) => r.requestId === rid)!
  t.true(rs.index >= last)
})

test('a deposed leader cannot serve a read (no quorum confirms it)', (t) => {
  // Without CheckQuorum the isolated leader keeps believing it leads, which is
  // exactly when it must not answer reads from its stale state.
  const sim = cluster(5, { seed: 81, checkQuorum: false })
  const old = waitLeader(sim)
  commit(sim, 'before')
  const [f1, ...rest] = sim.members().filter((id) => id !== old.id)
  sim.partition([old.id, f1!], rest)
  waitLeader(sim, 1000, rest)
  commit(sim, 'newer', rest)
  t.is(old.core!.role, 'leader', 'still believes it leads')
  const rid = sim.read(old.id)
  t.truthy(rid, 'the request is accepted...')
  sim.run(300)
  t.false(old.readStates.some((r) => r.requestId === rid), '...but never confirmed')
  sim.heal()
  sim.run(200)
  t.not(old.core!.role, 'leader')
  t.false(old.readStates.some((r) => r.requestId === rid), 'nor after it learns it was deposed')
  t.like(old.core!.readIndex('late'), { ok: false, error: 'notLeader' })
  sim.settle()
})

test('a new leader defers reads until its own no-op commits', (t) => {
  const sim = cluster(3, { seed: 82 })
  sim.runUntil(() => sim.leader() !== undefined, 500, 'a leader')
  const l = sim.leader()!
  const noop = l.core!.lastIndex
  t.true(l.core!.commitIndex < noop)
  const rid = sim.read(l.id)!
  t.truthy(rid)
  sim.runUntil(() => l.readStates.length > 0, 50, 'the read')
  t.true(l.readStates[0]!.index >= noop)
})

test('single-node reads are served without a round trip; followers refuse reads', (t) => {
  const solo = cluster(1, { seed: 83 })
  const s = waitLeader(solo)
  commit(solo, 'a')
  const rid = solo.read(s.id)!
  solo.processReady(s)
  t.deepEqual(s.readStates.map((r) => r.requestId), [rid])

  const sim = cluster(3, { seed: 84 })
  const l = waitLeader(sim)
  const f = sim.members().find((id) => id !== l.id)!
  t.like(sim.core(f).readIndex('x'), { ok: false, error: 'notLeader', leader: l.id })
})

test('reads under crashes and partitions never go back in time', (t) => {
  let served = 0
  for (let seed = 85; seed < 95; seed++) {
    const sim = new Sim({ seed, voters: ids(5), net: { drop: 0.05, duplicate: 0.05, minDelay: 1, maxDelay: 4 } })
    for (let i = 0; i < 600; i++) {
      sim.step()
      const r = sim.rng()
      if (r < 0.3) sim.propose()
      else if (r < 0.5) sim.read()
      else if (r < 0.51) {
        const l = sim.leader()
        if (l) sim.partition([l.id, ids(5).find((id) => id !== l.id)!], ids(5).filter((id) => id !== l.id).slice(1))
      } else if (r < 0.53) sim.heal()
    }
    sim.settle()
    served += sim.readsServed
  }
  t.true(served > 300, `only ${served} reads served`)
})
