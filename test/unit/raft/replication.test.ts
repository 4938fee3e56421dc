import test from 'ava'
import type { Message, NodeId } from '../../../src/raft/index.ts'
import { cluster, commit, ids, Sim, waitLeader } from './sim.ts'

test('agreement: entries are applied in the same order everywhere, despite a crashed follower', (t) => {
  const sim = cluster(5, { seed: 20 })
  const l = waitLeader(sim)
  for (let i = 0; i < 10; i++) commit(sim, `a${i}`)
  const f = sim.members().find((id) => id !== l.id)!
  sim.crash(f)
  for (let i = 0; i < 10; i++) commit(sim, `b${i}`)
  sim.restart(f)
  commit(sim, 'c')
  const expected = [...Array.from({ length: 10 }, (_, i) => `a${i}`), ...Array.from({ length: 10 }, (_, i) => `b${i}`), 'c']
  for (const id of sim.members()) t.deepEqual(sim.node(id).sm.values, expected, id)
})

test('no commit without a majority', (t) => {
  const sim = cluster(5, { seed: 21 })
  const l = waitLeader(sim)
  commit(sim, 'base')
  const followers = sim.members().filter((id) => id !== l.id)
  for (const f of followers.slice(0, 3)) sim.crash(f)
  const r = sim.propose(l.id, 'lonely')
  if (!r?.ok) throw new Error('propose failed')
  sim.run(400)
  t.false(sim.isApplied('lonely'))
  for (const id of [l.id, followers[3]!]) t.true(sim.core(id).commitIndex < r.index, `${id} committed without a majority`)
  for (const f of followers.slice(0, 3)) sim.restart(f)
  sim.settle()
})

test('a partitioned old leader rejoins and its uncommitted entries are discarded', (t) => {
  const sim = cluster(5, { seed: 22 })
  const l1 = waitLeader(sim)
  commit(sim, 'base')
  const [f1, ...rest] = sim.members().filter((id) => id !== l1.id)
  sim.partition([l1.id, f1!], rest)
  for (let i = 0; i < 5; i++) sim.propose(l1.id, `stale${i}`)
  sim.run(20)
  const l2 = waitLeader(sim, 1000, rest)
  for (let i = 0; i < 5; i++) commit(sim, `fresh${i}`, rest)
  sim.heal()
  commit(sim, 'after')
  sim.settle()
  for (const id of sim.members()) {
    const vals = sim.node(id).sm.values.filter((v) => !v.startsWith('settle'))
    t.false(vals.some((v) => v.startsWith('stale')), `${id} applied a discarded entry`)
    t.deepEqual(vals, ['base', 'fresh0', 'fresh1', 'fresh2', 'fresh3', 'fresh4', 'after'])
  }
  t.not(l2.id, l1.id)
})

test('backup: a leader quickly overwrites 50+ divergent entries (fast backtracking)', (t) => {
  const sim = cluster(5, { seed: 23 })
  let rejections = 0
  sim.filter = (m: Message) => {
    if (m.type === 'appendEntriesResponse' && !m.success && m.index > 0) rejections++
    return true
  }
  const l1 = waitLeader(sim).id
  commit(sim, 'base')
  const others = sim.members().filter((id) => id !== l1)
  // Leader and one follower are cut off and accumulate 50 uncommitted entries.
  sim.partition([l1, others[0]!], [others[1]!, others[2]!, others[3]!])
  for (let i = 0; i < 50; i++) sim.propose(l1, `lost-a${i}`)
  sim.run(10)
  // The other three elect a leader and commit 50 entries.
  const l2 = waitLeader(sim, 1000, others.slice(1)).id
  for (let i = 0; i < 50; i++) sim.propose(l2, `ok-b${i}`)
  commit(sim, 'ok-b-end', others.slice(1))
  // Now that leader and one follower are cut off and accumulate 50 more.
  const other = others.slice(1).find((id) => id !== l2)!
  const third = others.slice(1).find((id) => id !== l2 && id !== other)!
  sim.partition([l2, third], [l1, others[0]!, other])
  for (let i = 0; i < 50; i++) sim.propose(l2, `lost-c${i}`)
  sim.run(10)
  // The first leader, its follower and `other` form a majority; `other` has the newer log.
  const l3 = waitLeader(sim, 1000, [l1, others[0]!, other]).id
  for (let i = 0; i < 50; i++) sim.propose(l3, `ok-d${i}`)
  commit(sim, 'ok-d-end', [l1, others[0]!, other])
  sim.heal()
  rejections = 0
  commit(sim, 'final')
  sim.settle()
  const vals = sim.node(l1).sm.values
  t.is(vals.filter((v) => v.startsWith('lost')).length, 0)
  t.is(vals.filter((v) => v.startsWith('ok-')).length, 102)
  for (const id of sim.members()) t.deepEqual(sim.node(id).sm.values, vals)
  // Without conflict hints every divergent follower would need ~50 round trips.
  t.true(rejections <= 12, `${rejections} rejected appends after healing`)
})

test('Figure 8: an old-term entry replicated on a majority is not committed by counting', (t) => {
  // Raft paper Fig. 8, scripted with message filters. One entry per message
  // so that followers acknowledge the old-term entry on its own.
  for (let seed = 30; seed < 36; seed++) {
    const sim = cluster(5, { seed, maxSizePerMsg: 1 })
    const l1 = waitLeader(sim).id
    commit(sim, 'base')
    const [f1, x1, x2, x3] = sim.members().filter((id) => id !== l1) as [NodeId, NodeId, NodeId, NodeId]
    // (a) l1 replicates 'a' to f1 only.
    sim.filter = (m) => m.type !== 'appendEntries' || m.from !== l1 || m.to === f1
    const ra = sim.propose(l1, 'a')
    if (!ra?.ok) throw new Error('propose failed')
    sim.runUntil(() => sim.core(f1).lastIndex >= ra.index, 100, 'f1 to receive a')
    // (b) l1 and f1 die; one of the others wins a new term but its entries never leave it.
    sim.crash(l1)
    sim.crash(f1)
    sim.filter = (m) => m.type !== 'appendEntries'
    const x = waitLeader(sim, 1000, [x1, x2, x3]).id
    t.is(sim.core(x).logTerm(ra.index), sim.core(x).term, 'x has its own no-op where a is elsewhere')
    sim.crash(x)
    const [y, z] = [x1, x2, x3].filter((id) => id !== x) as [NodeId, NodeId]
    // (c) l1 and f1 return; whichever leads (w) replicates 'a' to y and z but
    // none of its own-term entries, so 'a' sits on a majority uncommitted.
    sim.restart(l1)
    sim.restart(f1)
    let w: NodeId | undefined
    sim.filter = (m) => {
      if (m.type !== 'appendEntries') return true
      const term = sim.node(m.from).core?.term
      return { ...m, entries: m.entries.filter((e) => e.term !== term) }
    }
    sim.runUntil(() => {
      const l = sim.leader()
      w = l?.id
      return l !== undefined && [y, z].every((id) => sim.core(id).logTerm(ra.index) === ra.term)
    }, 1000, 'a to reach a majority')
    sim.run(30)
    t.false(sim.isApplied('a'), 'a must not be committed by replica counting in a later term')
    t.true(w === l1 || w === f1)
    // (d) w and the other holder die; x (newer last term) wins and overwrites 'a'.
    sim.crash(l1)
    sim.crash(f1)
    sim.filter = null
    sim.restart(x)
    t.is(waitLeader(sim, 1000, [x, y, z]).id, x)
    sim.settle()
    t.false(sim.node(y).sm.values.includes('a'))
    t.deepEqual(sim.node(y).sm.values.filter((v) => !v.startsWith('settle')), ['base'])
  }
})

test('Figure 8 (unreliable): leaders crash right after appending, the network reorders', (t) => {
  for (let seed = 40; seed < 48; seed++) {
    const sim = new Sim({
      seed, voters: ids(5), maxSizePerMsg: 1,
      net: { drop: 0.1, duplicate: 0.02, minDelay: 1, maxDelay: 10 },
    })
    for (let i = 0; i < 1200; i++) {
      sim.step()
      const l = sim.leader()
      if (l && sim.rng() < 0.3) sim.propose(l.id)
      const down = [...sim.nodes.values()].filter((n) => !n.up)
      if (l && down.length < 2 && sim.rng() < 0.02) sim.crash(l.id)
      if (down.length > 0 && sim.rng() < 0.03) sim.restart(down[0]!.id)
    }
    sim.settle(3000)
    t.true(sim.acked.size > 10, `seed ${seed}: only ${sim.acked.size} writes committed`)
  }
})

test('persistence: repeated full-cluster crashes, including in the middle of handling a Ready', (t) => {
  const sim = cluster(3, { seed: 50, net: { drop: 0.02, duplicate: 0.02, minDelay: 1, maxDelay: 3 } })
  let n = 0
  for (let round = 0; round < 8; round++) {
    waitLeader(sim)
    for (let i = 0; i < 5; i++) commit(sim, `r${round}-${i}`)
    for (let i = 0; i < 5; i++) sim.propose(undefined, `maybe${n++}`)
    // Crash everybody at once, some of them while handling their next Ready.
    sim.onReady = () => (sim.rng() < 0.5 ? 'crashBeforePersist' : 'crashAfterPersist')
    sim.step()
    sim.onReady = null
    for (const node of sim.nodes.values()) sim.crash(node.id)
    for (const node of sim.nodes.values()) {
      sim.restart(node.id)
      // A restarted node replays its committed entries from durable storage.
      t.true(sim.core(node.id).commitIndex >= 0)
    }
  }
  sim.settle()
  const vals = sim.node('n1').sm.values
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 5; i++) t.true(vals.includes(`r${round}-${i}`))
  }
  t.true(sim.node('n1').restarts >= 8)
})

test('flow control: at most maxInflight appends are outstanding to a slow follower', (t) => {
  const sim = cluster(3, { seed: 51, maxInflight: 3, maxSizePerMsg: 1, net: { drop: 0, duplicate: 0, minDelay: 1, maxDelay: 1 } })
  const l = waitLeader(sim).id
  commit(sim, 'warm')
  const slow = sim.members().find((id) => id !== l)!
  // Hold back every ack from the slow follower and watch what the leader sends it.
  const held: Message[] = []
  let appendsWithEntries = 0
  sim.filter = (m) => {
    if (m.from === slow) { held.push(m); return false }
    if (m.to === slow && m.type === 'appendEntries' && m.entries.length > 0) appendsWithEntries++
    return true
  }
  for (let i = 0; i < 20; i++) sim.propose(l, `p${i}`)
  // The other follower keeps committing everything, one entry per message...
  sim.runUntil(() => sim.isApplied('p19'), 300, 'p19 to commit')
  // ...while the silent one only ever had the window's worth of appends sent to it.
  t.is(appendsWithEntries, 3)
  t.true(held.length > 0)
  sim.filter = null
  sim.settle()
  t.true(sim.node(slow).sm.values.includes('p19'))
})
