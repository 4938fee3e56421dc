import test from 'ava'
import type { Message } from '../../../src/raft/index.ts'
import { cluster, commit, waitLeader } from './sim.ts'

function countSnapshots(sim: ReturnType<typeof cluster>, to: string): () => number {
  let n = 0
  const prev = sim.filter
  sim.filter = (m: Message) => {
    if (m.type === 'installSnapshot' && m.to === to) n++
    return prev ? prev(m) : true
  }
  return () => n
}

test('a far-behind follower is brought up to date with a snapshot', (t) => {
  const sim = cluster(3, { seed: 60, compactEvery: 10 })
  const l = waitLeader(sim).id
  const f = sim.members().find((id) => id !== l)!
  sim.crash(f)
  for (let i = 0; i < 100; i++) sim.propose(l, `v${i}`)
  commit(sim, 'end', sim.members().filter((id) => id !== f))
  t.true(sim.core(l).firstIndex > 50, 'the leader compacted its log')
  const snaps = countSnapshots(sim, f)
  sim.restart(f)
  commit(sim, 'after')
  t.true(snaps() >= 1)
  t.deepEqual(sim.node(f).sm.values, sim.node(l).sm.values)
  t.true(sim.core(f).firstIndex > 50, 'the follower log restarts after the snapshot')
  t.truthy(sim.node(f).durable.snapshot)
  sim.settle()
})

test('crash while installing a snapshot, before and after persisting it', (t) => {
  for (const when of ['crashBeforePersist', 'crashAfterPersist'] as const) {
    const sim = cluster(3, { seed: 61, compactEvery: 5 })
    const l = waitLeader(sim).id
    const f = sim.members().find((id) => id !== l)!
    sim.crash(f)
    for (let i = 0; i < 40; i++) sim.propose(l, `v${i}`)
    commit(sim, 'end', sim.members().filter((id) => id !== f))
    const before = sim.node(f).durable.snapshot?.meta.index
    let crashed = false
    sim.onReady = (n, rd) => {
      if (n.id === f && rd.snapshot && !crashed) { crashed = true; return when }
      return undefined
    }
    sim.restart(f)
    sim.runUntil(() => crashed, 200, 'the snapshot to arrive')
    t.false(sim.node(f).up)
    const stored = sim.node(f).durable.snapshot?.meta.index
    if (when === 'crashBeforePersist') t.is(stored, before, 'nothing of the snapshot became durable')
    else t.true((stored ?? 0) > (before ?? 0), 'the snapshot is durable')
    sim.onReady = null
    sim.restart(f)
    commit(sim, 'after')
    t.deepEqual(sim.node(f).sm.values, sim.node(l).sm.values, when)
    sim.settle()
  }
})

test('a lost snapshot is retried', (t) => {
  const sim = cluster(3, { seed: 62, compactEvery: 5 })
  const l = waitLeader(sim).id
  const f = sim.members().find((id) => id !== l)!
  sim.crash(f)
  for (let i = 0; i < 30; i++) sim.propose(l, `v${i}`)
  commit(sim, 'end', sim.members().filter((id) => id !== f))
  let dropped = 0
  sim.filter = (m) => {
    if (m.type === 'installSnapshot' && dropped < 2) { dropped++; return false }
    return true
  }
  sim.restart(f)
  commit(sim, 'after')
  t.is(dropped, 2)
  t.deepEqual(sim.node(f).sm.values, sim.node(l).sm.values)
})

test('reportSnapshot(failure) makes the leader retry sooner', (t) => {
  const sim = cluster(3, { seed: 63, compactEvery: 5 })
  const l = waitLeader(sim).id
  const f = sim.members().find((id) => id !== l)!
  sim.crash(f)
  for (let i = 0; i < 30; i++) sim.propose(l, `v${i}`)
  commit(sim, 'end', sim.members().filter((id) => id !== f))
  let sent = 0
  sim.filter = (m) => {
    if (m.type !== 'installSnapshot') return true
    sent++
    if (sent === 1) { sim.core(l).reportSnapshot(f, false); return false }
    return true
  }
  sim.restart(f)
  const steps = sim.runUntil(() => sim.isApplied('end') && sim.node(f).sm.values.includes('end'), 200, 'the follower to catch up')
  t.true(steps < 2 * 10 * 2, 'retried before the snapshot timeout')
  t.is(sent, 2)
})

test('all nodes restart from snapshot + log tail', (t) => {
  const sim = cluster(5, { seed: 64, compactEvery: 7, net: { drop: 0.05, duplicate: 0.05, minDelay: 1, maxDelay: 3 } })
  waitLeader(sim)
  for (let i = 0; i < 60; i++) commit(sim, `v${i}`)
  const want = sim.node('n1').sm.values.slice()
  for (const n of sim.nodes.values()) sim.crash(n.id)
  for (const n of sim.nodes.values()) {
    t.truthy(n.durable.snapshot)
    sim.restart(n.id)
  }
  commit(sim, 'after')
  sim.settle()
  t.deepEqual(sim.node('n1').sm.values.slice(0, want.length), want)
})

test('compact() refuses indexes that are not applied or already compacted', (t) => {
  const sim = cluster(1, { seed: 65 })
  const l = waitLeader(sim)
  commit(sim, 'a')
  const c = l.core!
  t.true(c.compact(c.appliedIndex + 1, new Uint8Array()) instanceof Error)
  const meta = c.compact(c.appliedIndex, new Uint8Array([1]))
  if (meta instanceof Error) throw meta
  t.is(meta.index, c.appliedIndex)
  t.deepEqual(meta.conf, { voters: ['n1'], learners: [] })
  t.true(c.compact(meta.index, new Uint8Array()) instanceof Error)
  t.is(c.firstIndex, meta.index + 1)
})
