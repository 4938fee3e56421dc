import test from 'ava'
import { RaftLog, type Entry } from '../../../src/raft/index.ts'

const e = (index: number, term: number, data = ''): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(data) })
const terms = (log: RaftLog) => log.allEntries().map((x) => x.term)

test('indexes and terms around the snapshot boundary', (t) => {
  const log = new RaftLog({ index: 5, term: 2, conf: { voters: [], learners: [] } }, [e(4, 2), e(6, 2), e(7, 3)], 6)
  t.is(log.firstIndex(), 6)
  t.is(log.lastIndex(), 7)
  t.is(log.term(5), 2)
  t.is(log.term(4), undefined, 'compacted')
  t.is(log.term(8), undefined, 'beyond the end')
  t.is(log.lastTerm(), 3)
  t.is(log.committed, 6)
  t.is(log.applied, 5)
  t.is(log.stableIndex, 7, 'everything loaded from storage is stable')
  t.deepEqual(log.slice(1, 100).map((x) => x.index), [6, 7])
})

test('maybeAppend: matching, conflicting, gapped and committed-rewriting appends', (t) => {
  const log = new RaftLog(null, [e(1, 1), e(2, 1), e(3, 2)], 1)
  t.is(log.maybeAppend(3, 1, 3, [e(4, 2)]), null, 'prev term mismatch')
  t.is(log.maybeAppend(5, 2, 3, []), null, 'prev beyond the end')
  // Duplicate of what we have: nothing truncated, commit limited to the last new entry.
  t.deepEqual(log.maybeAppend(1, 1, 10, [e(2, 1)]), { lastNew: 2, truncatedAt: 0 })
  t.is(log.committed, 2)
  t.deepEqual(terms(log), [1, 1, 2])
  // Conflict at 3: truncate and replace.
  t.deepEqual(log.maybeAppend(2, 1, 2, [e(3, 3), e(4, 3)]), { lastNew: 4, truncatedAt: 3 })
  t.deepEqual(terms(log), [1, 1, 3, 3])
  t.is(log.stableIndex, 2, 'the replaced suffix is no longer durable')
  t.deepEqual(log.unstableEntries().map((x) => x.index), [3, 4])
  log.commitTo(3)
  t.is(log.maybeAppend(2, 1, 3, [e(3, 4)]), 'conflictWithCommitted')
  t.deepEqual(terms(log), [1, 1, 3, 3])
})

test('findConflictByTerm jumps over whole terms', (t) => {
  const log = new RaftLog(null, [e(1, 1), e(2, 1), e(3, 2), e(4, 2), e(5, 2), e(6, 5), e(7, 5)], 0)
  t.deepEqual(log.findConflictByTerm(7, 4), { index: 5, term: 2 })
  t.deepEqual(log.findConflictByTerm(7, 5), { index: 7, term: 5 })
  t.deepEqual(log.findConflictByTerm(5, 1), { index: 2, term: 1 })
  t.deepEqual(log.findConflictByTerm(100, 3), { index: 5, term: 2 })
  t.deepEqual(log.findConflictByTerm(7, 0), { index: 0, term: 0 })
  const compacted = new RaftLog({ index: 4, term: 2, conf: { voters: [], learners: [] } }, [e(5, 3), e(6, 3)], 4)
  t.deepEqual(compacted.findConflictByTerm(6, 1), { index: 4, term: 0 }, 'answer inside the snapshot: term unknown')
  t.deepEqual(compacted.findConflictByTerm(6, 2), { index: 4, term: 2 })
})

test('isUpToDate compares last term, then length (§5.4.1)', (t) => {
  const log = new RaftLog(null, [e(1, 1), e(2, 3)], 0)
  t.true(log.isUpToDate(2, 3))
  t.true(log.isUpToDate(1, 4))
  t.false(log.isUpToDate(5, 2))
  t.false(log.isUpToDate(1, 3))
})

test('stable/applied bookkeeping, compaction and restore', (t) => {
  const log = new RaftLog(null, [], 0)
  const batch = [e(1, 1, 'a'), e(2, 1, 'b'), e(3, 1, 'c')]
  log.append(batch)
  t.is(log.unstableEntries().length, 3)
  log.stableEntries(batch)
  t.is(log.stableIndex, 3)
  log.commitTo(3)
  t.deepEqual(log.nextCommittedEntries().map((x) => x.index), [1, 2, 3])
  t.throws(() => log.appliedTo(4))
  log.appliedTo(2)
  t.throws(() => log.compact(3), { message: /cannot compact/ })
  log.compact(2)
  t.is(log.firstIndex(), 3)
  t.is(log.term(2), 1)
  t.deepEqual(log.nextCommittedEntries().map((x) => x.index), [3])
  log.restore({ meta: { index: 10, term: 4, conf: { voters: ['x'], learners: [] } }, data: new Uint8Array() })
  t.is(log.lastIndex(), 10)
  t.is(log.committed, 10)
  t.is(log.applied, 10)
  t.truthy(log.pendingSnapshot)
  log.stableSnapTo(10)
  t.is(log.pendingSnapshot, null)
  t.throws(() => log.append([e(12, 4)]), { message: /gap/ })
})

test('slice respects the byte budget but always returns one entry', (t) => {
  const log = new RaftLog(null, [e(1, 1, 'x'.repeat(100)), e(2, 1, 'y'.repeat(100)), e(3, 1, 'z')], 0)
  t.is(log.slice(1, 4, 1).length, 1)
  t.is(log.slice(1, 4, 240).length, 2)
  t.is(log.slice(1, 4).length, 3)
})
