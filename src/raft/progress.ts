// Leader-side view of one follower's log (cf. etcd's tracker.Progress).
//
// probe:     we do not know where the follower's log matches ours; send one
//            AppendEntries at a time and back off on rejection.
// replicate: the follower is known to match up to `match`; stream entries
//            optimistically (pipelining) with at most `maxInflight` unacked
//            messages, the flow-control window.
// snapshot:  the log the follower needs is compacted; a snapshot is in flight
//            and nothing else is sent until it is acknowledged.

export type ProgressState = 'probe' | 'replicate' | 'snapshot'

export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append is outstanding, wait for its answer (or a heartbeat answer). */
  probeSent = false
  pendingSnapshot = 0
  /** Leader ticks since the snapshot was sent; used to retry a lost snapshot. */
  snapshotElapsed = 0
  /** Last index of each unacknowledged append in replicate state, ascending. */
  inflights: number[] = []
  /** Heard from since the last CheckQuorum round. */
  recentActive = false

  constructor(next: number) {
    this.next = next
  }

  becomeProbe(): void {
    // After a successful snapshot the follower has at least pendingSnapshot.
    this.next = this.state === 'snapshot'
      ? Math.max(this.match + 1, this.pendingSnapshot + 1)
      : this.match + 1
    this.state = 'probe'
    this.probeSent = false
    this.pendingSnapshot = 0
    this.inflights = []
  }

  becomeReplicate(): void {
    this.state = 'replicate'
    this.next = this.match + 1
    this.probeSent = false
    this.pendingSnapshot = 0
    this.inflights = []
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot'
    this.pendingSnapshot = index
    this.snapshotElapsed = 0
    this.probeSent = false
    this.inflights = []
  }

  /** Successful append response for `n`. Returns true if `match` advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      this.probeSent = false
      updated = true
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  /**
   * Rejected append of prevLogIndex `rejected`; `matchHint` is the leader's
   * best guess of the last matching index. Returns false if the rejection is
   * stale (reordered/duplicated) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  isPaused(maxInflight: number): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent
      case 'replicate': return this.inflights.length >= maxInflight
      case 'snapshot': return true
    }
  }

  /** Records that an append ending at `last` (0 entries: last = next-1) was sent. */
  sentEntries(count: number, last: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1
        this.inflights.push(last)
      }
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  /** Frees the flow-control slots of appends acknowledged up to `index`. */
  freeLE(index: number): void {
    let k = 0
    while (k < this.inflights.length && this.inflights[k]! <= index) k++
    if (k > 0) this.inflights.splice(0, k)
  }
}
