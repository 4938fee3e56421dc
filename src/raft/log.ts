import type { Entry, Snapshot, SnapshotMeta } from './types.ts'

/** Approximate encoded size of an entry's index/term/type, for batching. */
const ENTRY_OVERHEAD = 16

/**
 * The in-memory Raft log of one node (cf. etcd's raftLog + unstable).
 *
 * Layout: [snapshot | entries...]. entries[k].index === snapshotIndex + 1 + k.
 * Everything at or below `stableIndex` is known durable (the application
 * acknowledged it via advance()); entries above it are "unstable" and are
 * handed to the application by ready(). A snapshot received from a leader is
 * unstable until acknowledged too (`pendingSnapshot`).
 *
 * Invariants: snapshotIndex <= applied <= committed <= lastIndex, and
 * committed entries are never truncated.
 */
export class RaftLog {
  snapshotIndex: number
  snapshotTerm: number
  private ents: Entry[]
  stableIndex: number
  committed: number
  applied: number
  pendingSnapshot: Snapshot | null = null

  constructor(snapshot: SnapshotMeta | null, entries: readonly Entry[], committed: number, applied?: number) {
    this.snapshotIndex = snapshot?.index ?? 0
    this.snapshotTerm = snapshot?.term ?? 0
    this.ents = entries.filter((e) => e.index > this.snapshotIndex)
    for (let k = 0; k < this.ents.length; k++) {
      const e = this.ents[k]!
      if (e.index !== this.snapshotIndex + 1 + k) {
        throw new Error(`raft log: stored entries not contiguous at index ${e.index}`)
      }
      const prevTerm = k === 0 ? this.snapshotTerm : this.ents[k - 1]!.term
      if (e.term < prevTerm) throw new Error(`raft log: stored terms decrease at index ${e.index}`)
    }
    this.stableIndex = this.lastIndex()
    if (committed > this.lastIndex()) {
      throw new Error(`raft log: commit ${committed} beyond last index ${this.lastIndex()}`)
    }
    this.committed = Math.max(committed, this.snapshotIndex)
    this.applied = Math.max(this.snapshotIndex, Math.min(applied ?? 0, this.committed))
  }

  firstIndex(): number {
    return this.snapshotIndex + 1
  }

  lastIndex(): number {
    return this.snapshotIndex + this.ents.length
  }

  lastTerm(): number {
    return this.ents.length === 0 ? this.snapshotTerm : this.ents[this.ents.length - 1]!.term
  }

  /** Term at `i`, or undefined when i is compacted away or beyond the end. */
  term(i: number): number | undefined {
    if (i === this.snapshotIndex) return this.snapshotTerm
    if (i < this.snapshotIndex || i > this.lastIndex()) return undefined
    return this.ents[i - this.snapshotIndex - 1]!.term
  }

  entry(i: number): Entry | undefined {
    if (i <= this.snapshotIndex || i > this.lastIndex()) return undefined
    return this.ents[i - this.snapshotIndex - 1]
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  /**
   * Entries in [lo, hi), capped at roughly maxBytes of encoded size (payload
   * plus a fixed per-entry overhead), but always at least one entry.
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    lo = Math.max(lo, this.firstIndex())
    hi = Math.min(hi, this.lastIndex() + 1)
    if (lo >= hi) return []
    const out: Entry[] = []
    let size = 0
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.snapshotIndex - 1]!
      size += e.data.byteLength + ENTRY_OVERHEAD
      if (out.length > 0 && size > maxBytes) break
      out.push(e)
    }
    return out
  }

  /**
   * Appends entries, truncating any suffix they replace. Returns the first
   * index that was replaced (0 if nothing was truncated).
   */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return 0
    const first = entries[0]!.index
    if (first <= this.committed) throw new Error(`raft log: append at ${first} would overwrite committed ${this.committed}`)
    if (first > this.lastIndex() + 1) throw new Error(`raft log: gap appending ${first} after ${this.lastIndex()}`)
    let truncatedAt = 0
    if (first <= this.lastIndex()) {
      truncatedAt = first
      this.ents.length = first - this.snapshotIndex - 1
      // Durable copies of the replaced suffix are stale now; the application
      // overwrites them when it persists the new entries (see Ready.entries).
      this.stableIndex = Math.min(this.stableIndex, first - 1)
    }
    for (const e of entries) this.ents.push(e)
    return truncatedAt
  }

  /**
   * First index in `entries` whose term differs from ours (or that we do not
   * have yet); 0 when all of them are already present. Entries at or below
   * the snapshot are treated as matching: they are committed, so by Log
   * Matching they must agree.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (e.index <= this.snapshotIndex) continue
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * Follower side of AppendEntries (Fig. 2 receiver rules 2-5). Returns the
   * index of the last new entry, or null if prevLogIndex/prevLogTerm does not
   * match, or 'conflictWithCommitted' if accepting would rewrite committed
   * history (only possible with a buggy/malicious peer).
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]):
    { lastNew: number; truncatedAt: number } | null | 'conflictWithCommitted' {
    if (!this.matchTerm(prevIndex, prevTerm)) return null
    const lastNew = prevIndex + entries.length
    const ci = this.findConflict(entries)
    let truncatedAt = 0
    if (ci !== 0) {
      if (ci <= this.committed) return 'conflictWithCommitted'
      truncatedAt = this.append(entries.slice(ci - prevIndex - 1))
    }
    // Only entries known to match the leader may be committed (Fig. 2 rule 5).
    this.commitTo(Math.min(leaderCommit, lastNew))
    return { lastNew, truncatedAt }
  }

  /**
   * Largest index <= `index` whose term is <= `term`, with that term. Terms are
   * non-decreasing along the log so this is a binary search. Returns term 0 if
   * the answer lies inside the compacted prefix.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    index = Math.min(index, this.lastIndex())
    if (index <= this.snapshotIndex) {
      const known = index === this.snapshotIndex && this.snapshotTerm <= term
      return { index, term: known ? this.snapshotTerm : 0 }
    }
    if (this.term(index)! <= term) return { index, term: this.term(index)! }
    if (this.snapshotTerm > term) return { index: this.snapshotIndex, term: 0 }
    // Invariant: term(lo) <= term < term(hi); lo may be the snapshot index.
    let lo = this.snapshotIndex
    let hi = index
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2)
      if (this.term(mid)! <= term) lo = mid
      else hi = mid
    }
    return { index: lo, term: this.term(lo)! }
  }

  commitTo(i: number): boolean {
    i = Math.min(i, this.lastIndex())
    if (i <= this.committed) return false
    this.committed = i
    return true
  }

  appliedTo(i: number): void {
    if (i > this.committed) throw new Error(`raft log: applied ${i} beyond committed ${this.committed}`)
    if (i > this.applied) this.applied = i
  }

  unstableEntries(): Entry[] {
    return this.ents.slice(Math.max(0, this.stableIndex - this.snapshotIndex))
  }

  /** Committed entries not yet handed to the application. */
  nextCommittedEntries(maxBytes = Infinity): Entry[] {
    return this.slice(this.applied + 1, this.committed + 1, maxBytes)
  }

  /**
   * Marks durable the entries of a Ready the application has persisted. If
   * part of that batch was replaced in the meantime (a new leader truncated
   * it), only the prefix still present (the very same objects) counts; the
   * replacement is handed out by the next Ready.
   */
  stableEntries(persisted: readonly Entry[]): void {
    for (let k = persisted.length - 1; k >= 0; k--) {
      const e = persisted[k]!
      if (this.entry(e.index) === e) {
        if (e.index > this.stableIndex) this.stableIndex = e.index
        return
      }
    }
  }

  stableSnapTo(i: number): void {
    if (this.pendingSnapshot !== null && this.pendingSnapshot.meta.index === i) this.pendingSnapshot = null
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.snapshotIndex = s.meta.index
    this.snapshotTerm = s.meta.term
    this.ents = []
    this.committed = s.meta.index
    this.applied = s.meta.index
    this.stableIndex = s.meta.index
    this.pendingSnapshot = s
  }

  /** Drops entries up to and including `i` after the application snapshotted its state at `i`. */
  compact(i: number): void {
    if (i <= this.snapshotIndex) return
    if (i > this.applied || i > this.stableIndex) throw new Error(`raft log: cannot compact to ${i}`)
    this.snapshotTerm = this.term(i)!
    this.ents = this.ents.slice(i - this.snapshotIndex)
    this.snapshotIndex = i
  }

  /** All entries currently held in memory (for the application's debugging and tests). */
  allEntries(): readonly Entry[] {
    return this.ents
  }
}
