import test from 'ava'
import { pack, unpack } from 'msgpackr'
import {
  RaftCore, MAX_TERM, encodeConfChange, seededRandom, validateMessage,
  type Entry, type Message, type PersistentState, type Ready,
} from '../../../src/raft/index.ts'
import { runChurn } from './churn.ts'
import { cluster, commit, ids, Sim, waitLeader } from './sim.ts'

const bytes = (s: string) => new TextEncoder().encode(s)

function entry(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: bytes(data) }
}

/** State of a founding member after the genesis snapshot, with `entries` appended. */
function stored(voters: string[], term: number, entries: Entry[], commit = 1, vote: string | null = null): PersistentState {
  return {
    hardState: { term, vote, commit },
    entries,
    snapshot: { meta: { index: 1, term: 1, conf: { voters, learners: [] } }, data: new Uint8Array() },
  }
}

/** Delivers messages between cores until quiet; returns every message delivered. */
function exchange(cores: RaftCore[], rounds = 50): Message[] {
  const byId = new Map(cores.map((c) => [c.id, c]))
  const seen: Message[] = []
  for (let i = 0; i < rounds; i++) {
    const out: Message[] = []
    for (const c of cores) {
      while (c.hasReady()) {
        const rd = c.ready()
        out.push(...rd.messages)
        c.advance()
      }
    }
    if (out.length === 0) break
    for (const m of out) {
      seen.push(m)
      byId.get(m.to)?.step(m)
    }
  }
  return seen
}

function drain(c: RaftCore): Ready[] {
  const out: Ready[] = []
  while (c.hasReady()) {
    out.push(c.ready())
    c.advance()
  }
  return out
}

const valid: Message = {
  type: 'appendEntries', from: 'a', to: 'b', term: 3, prevLogIndex: 4, prevLogTerm: 2, commit: 4,
  entries: [entry(5, 2, 'x'), entry(6, 3, 'y')],
}

test('validateMessage accepts well-formed messages and strips unknown fields', (t) => {
  const r = validateMessage({ ...valid, extra: 'junk' })
  t.deepEqual(r, valid)
  for (const m of [
    { type: 'appendEntriesResponse', from: 'a', to: 'b', term: 1, success: false, index: 3, hintIndex: 2, hintTerm: 1 },
    { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 0, context: 7 },
    { type: 'heartbeatResponse', from: 'a', to: 'b', term: 1, context: 7 },
    { type: 'requestVote', from: 'a', to: 'b', term: 1, lastLogIndex: 0, lastLogTerm: 0, preVote: true, transfer: false },
    { type: 'requestVoteResponse', from: 'a', to: 'b', term: 1, preVote: false, granted: true },
    { type: 'installSnapshot', from: 'a', to: 'b', term: 2, snapshot: { meta: { index: 5, term: 2, conf: { voters: ['a'], learners: [] } }, data: bytes('s') } },
    { type: 'timeoutNow', from: 'a', to: 'b', term: 1 },
  ]) {
    t.false(validateMessage(m) instanceof Error, m.type)
  }
})

test('validateMessage rejects malformed input', (t) => {
  const bad: unknown[] = [
    null, undefined, 42, 'appendEntries', [], {},
    { ...valid, type: 'nope' },
    { ...valid, type: 7 },
    { ...valid, from: '' },
    { ...valid, to: 5 },
    { ...valid, term: -1 },
    { ...valid, term: 1.5 },
    { ...valid, term: MAX_TERM + 1 },
    { ...valid, term: Number.NaN },
    { ...valid, prevLogIndex: '4' },
    { ...valid, entries: 'x' },
    { ...valid, entries: [entry(6, 2)] }, // not contiguous with prevLogIndex
    { ...valid, entries: [entry(5, 3), entry(6, 2)] }, // terms go backwards
    { ...valid, entries: [entry(5, 9)] }, // entry from a term after the message's
    { ...valid, entries: [{ index: 5, term: 2, type: 'normal', data: 'str' }] },
    { ...valid, entries: [{ index: 5, term: 2, type: 'weird', data: bytes('') }] },
    { ...valid, prevLogTerm: 4 },
    { type: 'requestVote', from: 'a', to: 'b', term: 1, lastLogIndex: 0, lastLogTerm: 0, preVote: 'yes', transfer: false },
    { type: 'installSnapshot', from: 'a', to: 'b', term: 2, snapshot: { meta: { index: 5, term: 2, conf: { voters: [1] } }, data: bytes('') } },
    { type: 'installSnapshot', from: 'a', to: 'b', term: 2, snapshot: { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: bytes('') } },
    { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 0 },
  ]
  for (const b of bad) t.true(validateMessage(b) instanceof Error, JSON.stringify(b, (_k, v) => v instanceof Uint8Array ? '<bytes>' : v))
})

test('step() never throws on garbage and counts what it drops', (t) => {
  const sim = cluster(3, { seed: 90 })
  const l = waitLeader(sim)
  commit(sim, 'a')
  const rnd = seededRandom(1)
  const junk = (): unknown => {
    const pickFrom = [null, 0, -1, 2 ** 60, 'x', '', true, [], {}, bytes('z'), Number.NaN, { a: 1 }]
    return pickFrom[Math.floor(rnd() * pickFrom.length)]
  }
  const fields = ['type', 'from', 'to', 'term', 'entries', 'commit', 'prevLogIndex', 'index', 'snapshot', 'context', 'preVote']
  const templates: Message[] = [
    valid,
    { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 1, context: 1 },
    { type: 'requestVote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0, preVote: true, transfer: false },
  ]
  for (const c of sim.upNodes().map((n) => n.core!)) {
    const before = c.stats.dropped.malformed ?? 0
    for (let i = 0; i < 2000; i++) {
      let m: unknown
      if (rnd() < 0.2) m = junk()
      else {
        const base = { ...templates[Math.floor(rnd() * templates.length)]!, to: c.id } as Record<string, unknown>
        base[fields[Math.floor(rnd() * fields.length)]!] = junk()
        m = base
      }
      t.notThrows(() => c.step(m))
    }
    t.true((c.stats.dropped.malformed ?? 0) - before > 1000)
  }
  // Still a healthy cluster.
  commit(sim, 'b')
  t.is(sim.leader()?.id, l.id)
})

test('misaddressed, self-sent, non-member and far-future messages are dropped and counted', (t) => {
  const sim = cluster(3, { seed: 91 })
  const l = waitLeader(sim).core!
  commit(sim, 'a')
  const term = l.term
  const peer = sim.members().find((id) => id !== l.id)!
  t.like(l.step({ type: 'timeoutNow', from: peer, to: 'zz', term }), { ok: false, reason: 'wrongRecipient' })
  t.like(l.step({ type: 'timeoutNow', from: l.id, to: l.id, term }), { ok: false, reason: 'fromSelf' })
  t.like(l.step({ type: 'heartbeatResponse', from: 'stranger', to: l.id, term, context: 0 }), { ok: false, reason: 'notMember' })
  t.like(l.step({ type: 'appendEntriesResponse', from: 'stranger', to: l.id, term, success: true, index: 1, hintIndex: 0, hintTerm: 0 }), { ok: false, reason: 'notMember' })
  t.like(l.step({ type: 'heartbeat', from: peer, to: l.id, term: 2 ** 50, commit: 0, context: 0 }), { ok: false, reason: 'malformed' })
  // A far-future vote request while the leader's lease holds is ignored.
  t.like(l.step({ type: 'requestVote', from: 'stranger', to: l.id, term: 10 ** 12, lastLogIndex: 10 ** 9, lastLogTerm: 10 ** 12, preVote: false, transfer: false }), { ok: false, reason: 'inLease' })
  t.like(l.step({ type: 'heartbeat', from: peer, to: l.id, term: term - 1, commit: 0, context: 0 }), { ok: false, reason: 'staleTerm' })
  t.is(l.term, term)
  t.is(l.role, 'leader')
  t.true(l.stats.dropped.notMember! >= 2)
  commit(sim, 'b')
})

test('propose/readIndex/transfer on a non-leader return notLeader with a leader hint', (t) => {
  const sim = cluster(3, { seed: 92 })
  const l = waitLeader(sim)
  const f = sim.core(sim.members().find((id) => id !== l.id)!)
  t.deepEqual(f.propose(bytes('x')), { ok: false, error: 'notLeader', leader: l.id })
  t.like(f.transferLeadership(l.id), { ok: false, error: 'notLeader', leader: l.id })
  const fresh = new RaftCore({ id: 'q', voters: ['q', 'r', 's'] })
  t.deepEqual(fresh.propose(bytes('x')), { ok: false, error: 'notLeader', leader: null })
})

test('Ready contract: a vote is in the same Ready as the hard state recording it', (t) => {
  const a = new RaftCore({ id: 'a', voters: ['a', 'b', 'c'], preVote: false })
  const b = new RaftCore({ id: 'b', voters: ['a', 'b', 'c'], preVote: false })
  drain(a)
  drain(b)
  for (let i = 0; i < 20 && a.role !== 'candidate'; i++) a.tick()
  t.is(a.role, 'candidate')
  const rdA = a.ready()
  t.is(rdA.hardState?.vote, 'a', 'the self-vote is persisted with the vote requests')
  t.true(rdA.messages.some((m) => m.type === 'requestVote' && m.to === 'b'))
  a.advance()
  b.step(rdA.messages.find((m) => m.to === 'b'))
  const rdB = b.ready()
  t.deepEqual(rdB.hardState, { term: a.term, vote: 'a', commit: 1 })
  t.like(rdB.messages[0], { type: 'requestVoteResponse', granted: true })
  t.throws(() => b.ready(), { message: /advance/ })
  b.advance()
})

test('Ready contract: the leader commits only what it has persisted itself', (t) => {
  const c = new RaftCore({ id: 'solo', voters: ['solo'] })
  drain(c)
  for (let i = 0; i < 30 && c.role !== 'leader'; i++) { c.tick(); drain(c) }
  t.is(c.role, 'leader')
  const r = c.propose(bytes('x'))
  if (!r.ok) throw new Error('propose')
  const rd1 = c.ready()
  t.deepEqual(rd1.entries.map((e) => e.index), [r.index])
  t.false(rd1.committedEntries.some((e) => e.index === r.index), 'not committed before it is durable')
  c.advance()
  const rd2 = c.ready()
  t.true(rd2.committedEntries.some((e) => e.index === r.index))
  t.is(rd2.hardState?.commit, r.index)
  c.advance()
  t.false(c.hasReady())
})

test('Ready contract: a follower acknowledges entries in the Ready that persists them', (t) => {
  const f = new RaftCore({ id: 'f', storage: stored(['l', 'f'], 2, []) })
  drain(f)
  f.step({ type: 'appendEntries', from: 'l', to: 'f', term: 2, prevLogIndex: 1, prevLogTerm: 1, commit: 1, entries: [entry(2, 2, 'x'), entry(3, 2, 'y')] })
  const rd = f.ready()
  t.deepEqual(rd.entries.map((e) => e.index), [2, 3])
  t.like(rd.messages[0], { type: 'appendEntriesResponse', success: true, index: 3 })
  f.advance()
})

test('entries replaced between ready() and advance() are handed out again', (t) => {
  const f = new RaftCore({ id: 'f', storage: stored(['l', 'm', 'f'], 2, []) })
  drain(f)
  f.step({ type: 'appendEntries', from: 'l', to: 'f', term: 2, prevLogIndex: 1, prevLogTerm: 1, commit: 1, entries: [entry(2, 2, 'old2'), entry(3, 2, 'old3')] })
  const rd1 = f.ready()
  t.deepEqual(rd1.entries.map((e) => e.term), [2, 2])
  // A new leader overwrites index 3 before the first write completed.
  f.step({ type: 'appendEntries', from: 'm', to: 'f', term: 3, prevLogIndex: 2, prevLogTerm: 2, commit: 1, entries: [entry(3, 3, 'new3')] })
  f.advance()
  const rd2 = f.ready()
  t.deepEqual(rd2.entries.map((e) => [e.index, e.term]), [[3, 3]])
  f.advance()
})

test('fast backtracking: ~100 divergent entries are resolved in a couple of round trips', (t) => {
  const common = [entry(2, 1, 'c')]
  const fLog = [...common, ...Array.from({ length: 100 }, (_, i) => entry(3 + i, 2, `f${i}`))]
  const lLog = [...common, ...Array.from({ length: 60 }, (_, i) => entry(3 + i, 3, `l${i}`))]
  const l = new RaftCore({ id: 'l', storage: stored(['l', 'f'], 3, lLog, 2), preVote: false })
  const f = new RaftCore({ id: 'f', storage: stored(['l', 'f'], 3, fLog, 2), preVote: false })
  for (let i = 0; i < 30 && l.role !== 'candidate'; i++) l.tick()
  const msgs = exchange([l, f])
  t.is(l.role, 'leader')
  const rejections = msgs.filter((m) => m.type === 'appendEntriesResponse' && !m.success)
  t.true(rejections.length <= 2, `${rejections.length} rejections`)
  t.is(f.lastIndex, l.lastIndex)
  t.is(f.logTerm(50), 3)
  t.is(f.commitIndex, l.lastIndex)
})

test('a core restarted from storage keeps term, vote and commit and replays committed entries', (t) => {
  const log = [entry(2, 2, 'a'), entry(3, 2, 'b'), entry(4, 3, 'c')]
  const c = new RaftCore({ id: 'x', storage: stored(['x', 'y', 'z'], 3, log, 3, 'y') })
  t.is(c.term, 3)
  t.is(c.vote, 'y')
  t.is(c.commitIndex, 3)
  t.is(c.lastIndex, 4)
  t.is(c.role, 'follower')
  const rd = c.ready()
  t.is(rd.hardState, undefined, 'nothing new to persist')
  t.deepEqual(rd.entries, [])
  t.deepEqual(rd.committedEntries.map((e) => e.index), [2, 3])
  c.advance()
  t.is(c.appliedIndex, 3)
  const again = new RaftCore({ id: 'x', storage: stored(['x', 'y', 'z'], 3, log, 3, 'y'), applied: 3 })
  t.deepEqual(again.ready().committedEntries, [], 'applied tells the core what the app already has')
  t.throws(() => new RaftCore({ id: 'x', storage: stored(['x'], 3, [entry(3, 3)], 1) }), { message: /contiguous/ })
})

test('a conf change is effective in the log as soon as it is appended (thesis §4.1)', (t) => {
  const f = new RaftCore({ id: 'f', storage: stored(['l', 'f'], 2, []) })
  drain(f)
  const cc: Entry = { index: 2, term: 2, type: 'confChange', data: encodeConfChange({ type: 'addLearner', nodeId: 'z' }) }
  f.step({ type: 'appendEntries', from: 'l', to: 'f', term: 2, prevLogIndex: 1, prevLogTerm: 1, commit: 1, entries: [cc] })
  t.deepEqual(f.confState(), { voters: ['f', 'l'], learners: ['z'] })
  t.is(f.commitIndex, 1)
  // A corrupt conf entry is ignored identically by everyone.
  const bad: Entry = { index: 3, term: 2, type: 'confChange', data: bytes('{nope') }
  f.step({ type: 'appendEntries', from: 'l', to: 'f', term: 2, prevLogIndex: 2, prevLogTerm: 2, commit: 3, entries: [bad] })
  t.deepEqual(f.confState(), { voters: ['f', 'l'], learners: ['z'] })
})

test('messages are plain data: they survive a msgpackr round trip and validate', (t) => {
  const sim = new Sim({ seed: 93, voters: ids(3), spares: ['s1'], compactEvery: 3 })
  const seen = new Map<string, Message>()
  sim.filter = (m) => {
    const back = validateMessage(unpack(pack(m)))
    if (back instanceof Error) throw back
    seen.set(m.type, m)
    return back
  }
  waitLeader(sim)
  for (let i = 0; i < 10; i++) commit(sim, `v${i}`)
  sim.confChange({ type: 'addLearner', nodeId: 's1' })
  sim.read()
  sim.leader()!.core!.transferLeadership(sim.members().find((id) => id !== sim.leader()!.id)!)
  sim.run(200)
  sim.filter = (m) => {
    const back = validateMessage(unpack(pack(m)))
    if (back instanceof Error) throw back
    seen.set(m.type, m)
    return back
  }
  sim.settle()
  t.deepEqual([...seen.keys()].sort(), [
    'appendEntries', 'appendEntriesResponse', 'heartbeat', 'heartbeatResponse', 'installSnapshot',
    'requestVote', 'requestVoteResponse', 'timeoutNow',
  ])
})

test('determinism: the same seed replays the same run exactly', (t) => {
  const a = runChurn({ seed: 4242, steps: 300, membership: true })
  const b = runChurn({ seed: 4242, steps: 300, membership: true })
  t.deepEqual(a, b)
})
