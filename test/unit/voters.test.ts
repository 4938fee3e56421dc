import test from 'ava'
import { DEAD_MEMBER_GRACE_MS, nextVoterChange, type Liveness, type VoterInputs } from '../../src/agent/voters.ts'
import type { RaftStatus } from '../../src/raft/core.ts'

function status(voters: string[], learners: string[], match: Record<string, number> = {}): RaftStatus {
  const progress: RaftStatus['progress'] = {}
  for (const id of [...voters, ...learners]) progress[id] = { match: match[id] ?? 100, next: 101, state: 'replicate', learner: learners.includes(id), recentActive: true }
  return { id: 'a', role: 'leader', term: 2, vote: 'a', leader: 'a', commit: 100, applied: 100, firstIndex: 1, lastIndex: 100, conf: { voters, learners }, leadTransferee: null, progress }
}

const inputs = (s: RaftStatus, live: Record<string, Liveness> = {}, goneAt: Record<string, number> = {}, now = 100_000): VoterInputs =>
  ({ status: s, desired: 3, members: [...s.conf.voters, ...s.conf.learners], liveness: (id) => live[id], goneSince: (id) => goneAt[id], now })

test('promotes the most caught-up active learner while voters are short', (t) => {
  t.deepEqual(nextVoterChange(inputs(status(['a'], ['b', 'c'], { b: 90, c: 99 }))), { type: 'promote', nodeId: 'c' })
  t.is(nextVoterChange(inputs(status(['a'], ['b'], { b: 10 }))), null, 'too far behind')
  t.is(nextVoterChange(inputs(status(['a', 'b', 'c'], ['d']))), null, 'enough voters')
})

test('a dead voter counts as missing: a learner is promoted first, then the dead voter removed after the grace', (t) => {
  const s = status(['a', 'b', 'c'], ['d'])
  t.deepEqual(nextVoterChange(inputs(s, { c: 'dead' }, { c: 99_000 })), { type: 'promote', nodeId: 'd' })
  const after = status(['a', 'b', 'c', 'd'], [])
  t.is(nextVoterChange(inputs(after, { c: 'dead' }, { c: 100_000 - DEAD_MEMBER_GRACE_MS + 1 })), null, 'inside the grace period')
  t.deepEqual(nextVoterChange(inputs(after, { c: 'dead' }, { c: 100_000 - DEAD_MEMBER_GRACE_MS })), { type: 'remove', nodeId: 'c' })
})

test('never promotes a dead or suspect learner; removes dead learners; never removes itself', (t) => {
  t.is(nextVoterChange(inputs(status(['a'], ['b']), { b: 'suspect' })), null)
  t.deepEqual(nextVoterChange(inputs(status(['a', 'b', 'c'], ['d']), { d: 'left' }, { d: 0 })), { type: 'remove', nodeId: 'd' })
  t.is(nextVoterChange(inputs(status(['a', 'b', 'c'], []), { a: 'dead' }, { a: 0 })), null)
})

test('only the leader decides', (t) => {
  t.is(nextVoterChange(inputs({ ...status(['a'], ['b']), role: 'follower' })), null)
})

test('a known member that is alive again but no longer in the configuration rejoins as a learner', (t) => {
  const s = status(['a', 'b', 'c'], [])
  const i = { ...inputs(s, { d: 'alive' }), members: ['a', 'b', 'c', 'd'] }
  t.deepEqual(nextVoterChange(i), { type: 'addLearner', nodeId: 'd' })
  t.is(nextVoterChange({ ...i, liveness: (id: string) => (id === 'd' ? 'dead' : undefined) }), null, 'not while dead')
})

test('a voter beyond the target is demoted (never the leader), once nothing more urgent is pending', (t) => {
  t.deepEqual(nextVoterChange(inputs(status(['a', 'b', 'c', 'd'], [], { b: 100, c: 90, d: 100 }))), { type: 'demote', nodeId: 'c' })
  t.is(nextVoterChange(inputs(status(['a', 'b', 'c', 'd'], []), { d: 'dead' }, { d: 99_000 })), null, 'a dead voter inside its grace: wait')
  t.deepEqual(nextVoterChange(inputs(status(['a', 'b', 'c', 'd'], []), { d: 'dead' }, { d: 0 })), { type: 'remove', nodeId: 'd' })
})
