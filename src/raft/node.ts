// RaftNode: the IO around the pure core. It ticks the core on a timer, feeds
// it peer messages, and handles each Ready in the order the core demands:
// persist (one synced LevelDB batch) → send → restore/apply → advance.
// Proposals made while a batch is being written ride in the next one (group commit).
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { RaftCore, type RaftStatus } from './core.ts'
import type { RaftStorage } from './storage.ts'
import type { ConfChange, Message, NodeId, Rejection, SoftState } from './types.ts'

export interface RaftStateMachine {
  /** Index of the last entry the state machine reflects. */
  readonly appliedIndex: number
  /** Applies committed entries in order (one durable batch is fine); one result per entry. */
  applyEntries(entries: { index: number; data: Uint8Array }[]): Promise<unknown[]>
  /** The state as of `index`; may take its time (it must capture the state synchronously). */
  snapshot(): Promise<{ index: number; data: Uint8Array }>
  restore(data: Uint8Array): Promise<number>
}

/** Entries between snapshots, as a multiple of snapshotEvery, whatever the sizes (bounds the log kept in memory). */
const MAX_LOG_FACTOR = 8

/** A commit index is written on its own once it has waited this long for a batch to ride in. */
const COMMIT_SAVE_MS = 1_000

/** What a leader may send before its own write is durable (Raft thesis §10.2.1). */
const REPLICATION: ReadonlySet<Message['type']> = new Set(['appendEntries', 'heartbeat', 'installSnapshot', 'timeoutNow'])

export interface RaftMessageTransport {
  send(to: NodeId, message: Message): void
}

export interface RaftNodeOptions {
  id: NodeId
  storage: RaftStorage
  transport: RaftMessageTransport
  stateMachine: RaftStateMachine
  /** Founding voters of a new cluster; omit for a node that joins an existing one. */
  voters?: NodeId[]
  tickMs?: number
  electionTick?: number
  heartbeatTick?: number
  /**
   * Take a snapshot and compact the log after at least this many applied
   * entries, once the log since the last snapshot is as large as that
   * snapshot (or after 8 times as many entries, whichever comes first).
   */
  snapshotEvery?: number
  /** How long a proposal or read may wait before its outcome is declared unknown. */
  requestTimeoutMs?: number
  log?: { info(m: string): void; warn(m: string): void }
}

/** The write was refused: this node is not the leader (retry at `leader`). */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError'
  readonly leader: NodeId | null
  constructor(leader: NodeId | null, detail?: string) {
    super(detail ?? (leader ? `not the leader; the leader is ${leader}` : 'no leader is known'))
    this.leader = leader
  }
}

/** The write may or may not have been applied: leadership changed or time ran out. */
export class OutcomeUnknownError extends Error {
  override name = 'OutcomeUnknownError'
}

export class RaftRejectedError extends Error {
  override name = 'RaftRejectedError'
  readonly rejection: Rejection
  constructor(r: Rejection) {
    super(`${r.error}${r.detail ? `: ${r.detail}` : ''}`)
    this.rejection = r
  }
}

interface Pending<T> {
  term: number
  resolve: (v: T) => void
  reject: (e: Error) => void
  /** Date.now() after which the outcome is declared unknown (checked every tick: no timer per request). */
  deadline: number
  what: string
}

export interface Applied {
  index: number
  result: unknown
}

export class RaftNode extends EventEmitter<{ softState: [SoftState]; fatal: [Error]; applied: [number] }> {
  readonly id: NodeId
  readonly core: RaftCore
  readonly #o: RaftNodeOptions
  readonly #proposals = new Map<number, Pending<Applied>>()
  readonly #reads = new Map<string, Pending<number>>()
  #readyReads: { index: number; resolve: (i: number) => void }[] = []
  #ticker: NodeJS.Timeout | undefined
  #running = false
  #again = false
  #stopped = false
  #lastSnapshotIndex: number
  /** Size of the last snapshot, and of the entries applied since it was taken (see #maybeSnapshot). */
  #lastSnapshotBytes: number
  #logBytes = 0
  #softState: SoftState = { leader: null, role: 'follower' }
  #snapshotting = false
  #pendingCompaction: { index: number; data: Uint8Array } | null = null
  /** Last committed entry handled here, of any type (the state machine only sees normal ones). */
  #applied = 0

  private constructor(o: RaftNodeOptions, core: RaftCore, snapshotIndex: number, snapshotBytes: number) {
    super()
    this.setMaxListeners(0)
    this.#o = o
    this.id = o.id
    this.core = core
    this.#lastSnapshotIndex = snapshotIndex
    this.#lastSnapshotBytes = snapshotBytes
  }

  static async open(o: RaftNodeOptions): Promise<RaftNode> {
    const persisted = await o.storage.load()
    // A state machine behind the stored snapshot (an empty one, after a
    // restart) starts from the snapshot; the log replays the rest.
    const snap = persisted.snapshot
    if (snap && snap.data.length > 0 && snap.meta.index > o.stateMachine.appliedIndex) await o.stateMachine.restore(snap.data)
    const fresh = !persisted.snapshot && persisted.entries.length === 0 && persisted.hardState.term === 0
    const core = new RaftCore({
      id: o.id,
      storage: persisted,
      applied: Math.max(o.stateMachine.appliedIndex, persisted.snapshot?.meta.index ?? 0),
      electionTick: o.electionTick ?? 10,
      heartbeatTick: o.heartbeatTick ?? 1,
      ...(fresh && o.voters ? { voters: o.voters } : {}),
    })
    const node = new RaftNode(o, core, persisted.snapshot?.meta.index ?? 0, persisted.snapshot?.data.length ?? 0)
    node.#applied = core.appliedIndex
    // Replay what this node knows to be committed before anyone reads the
    // state (an agent's client decides from it which tasks to keep).
    await node.#drain()
    return node
  }

  get leader(): NodeId | null {
    return this.core.leader
  }

  get isLeader(): boolean {
    return this.core.role === 'leader'
  }

  get appliedIndex(): number {
    return this.#applied
  }

  /** Resolves true once every entry up to `index` has been handled here, false on timeout. */
  waitApplied(index: number, timeoutMs: number): Promise<boolean> {
    if (this.#applied >= index) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        this.off('applied', on)
        resolve(ok)
      }
      const on = (i: number) => { if (i >= index) done(true) }
      const timer = setTimeout(() => done(false), timeoutMs)
      this.on('applied', on)
    })
  }

  get softState(): SoftState {
    return this.#softState
  }

  status(): RaftStatus {
    return this.core.status()
  }

  start(): void {
    this.#ticker = setInterval(() => {
      this.core.tick()
      this.#expire(this.#proposals)
      this.#expire(this.#reads)
      this.#kick()
    }, this.#o.tickMs ?? 50)
    this.#kick()
  }

  /** A message from a peer whose identity the transport authenticated. Bad input is counted, logged and dropped. */
  receive(from: NodeId, message: unknown): void {
    if (this.#stopped) return
    const claimed = (message as { from?: unknown } | null)?.from
    if (claimed !== from) {
      this.#dropped('spoofed', `message from ${from} claims to be from ${String(claimed)}`)
      return
    }
    const r = this.core.step(message)
    if (!r.ok && (r.reason === 'malformed' || r.reason === 'notMember')) this.#dropped(r.reason, `from ${from}${r.detail ? `: ${r.detail}` : ''}`)
    this.#kick()
  }

  /** Dropped inbound messages by reason (also counted by the core in core.stats). */
  readonly drops: Record<string, number> = {}
  #lastDropLog = 0

  #dropped(reason: string, detail: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1
    const now = Date.now()
    if (now - this.#lastDropLog < 1_000) return // one line a second at most
    this.#lastDropLog = now
    this.#o.log?.warn(`raft: dropped a ${reason} message ${detail} (${JSON.stringify(this.drops)})`)
  }

  /** Replicates `data`; resolves with the state machine's answer once applied here. */
  propose(data: Uint8Array): Promise<Applied> {
    const r = this.core.propose(data)
    if (!r.ok) return Promise.reject(r.error === 'notLeader' ? new NotLeaderError(r.leader) : new RaftRejectedError(r))
    const p = this.#track(this.#proposals, r.index, r.term, `proposal at index ${r.index}`)
    this.#kick()
    return p
  }

  /** Membership change; resolves once committed and applied here. */
  changeMembership(cc: ConfChange): Promise<Applied> {
    const r = this.core.proposeConfChange(cc)
    if (!r.ok) return Promise.reject(r.error === 'notLeader' ? new NotLeaderError(r.leader) : new RaftRejectedError(r))
    const p = this.#track(this.#proposals, r.index, r.term, `membership change at index ${r.index}`)
    this.#kick()
    return p
  }

  /** Linearizable read barrier (ReadIndex): resolves once local state is at least as new as any acknowledged write. */
  readBarrier(): Promise<number> {
    const id = randomUUID()
    const r = this.core.readIndex(id)
    if (!r.ok) return Promise.reject(r.error === 'notLeader' ? new NotLeaderError(r.leader) : new RaftRejectedError(r))
    const p = this.#track(this.#reads, id, this.core.term, 'read')
    this.#kick()
    return p
  }

  transferLeadership(to: NodeId): void {
    const r = this.core.transferLeadership(to)
    if (!r.ok) throw r.error === 'notLeader' ? new NotLeaderError(r.leader) : new RaftRejectedError(r)
    this.#kick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#ticker)
    const err = new OutcomeUnknownError('raft node stopped')
    for (const p of [...this.#proposals.values(), ...this.#reads.values()]) p.reject(err)
    this.#proposals.clear()
    this.#reads.clear()
    while (this.#running) await new Promise((r) => setTimeout(r, 5))
  }

  #track<K, T>(map: Map<K, Pending<T>>, key: K, term: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      map.set(key, {
        term,
        resolve: (v) => { map.delete(key); resolve(v) },
        reject: (e) => { map.delete(key); reject(e) },
        deadline: Date.now() + (this.#o.requestTimeoutMs ?? 10_000),
        what,
      })
    })
  }

  /** Times out requests past their deadline; a map holds them in deadline order (one timeout for all). */
  #expire<K, T>(map: Map<K, Pending<T>>): void {
    const now = Date.now()
    for (const p of map.values()) {
      if (p.deadline > now) break
      p.reject(new OutcomeUnknownError(`${p.what} timed out; it may or may not have taken effect`))
    }
  }

  #kick(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    setImmediate(() => {
      this.#drain()
        .catch((err: Error) => this.#fail(err))
        .finally(() => {
          this.#running = false
          if (this.#again) {
            this.#again = false
            this.#kick()
          }
        })
    })
  }

  /** Storage or state machine failure: continuing could violate safety. */
  #fail(err: Error): void {
    if (this.#stopped) return
    this.#o.log?.warn(`raft: fatal: ${err.stack ?? err.message}`)
    this.#stopped = true
    clearInterval(this.#ticker)
    const unknown = new OutcomeUnknownError(`raft node failed: ${err.message}`)
    for (const p of [...this.#proposals.values(), ...this.#reads.values()]) p.reject(unknown)
    this.emit('fatal', err)
  }

  async #drain(): Promise<void> {
    const sm = this.#o.stateMachine
    if (this.#o.storage.commitUnsavedMs() >= COMMIT_SAVE_MS) await this.#o.storage.saveCommit()
    while (!this.#stopped && (this.core.hasReady() || this.#pendingCompaction)) {
      if (this.#pendingCompaction) this.#compact(this.#pendingCompaction)
      if (!this.core.hasReady()) continue
      const rd = this.core.ready()
      // A leader replicates while it persists; everything else waits for the write.
      const early = this.core.role === 'leader' ? rd.messages.filter((m) => REPLICATION.has(m.type)) : []
      const late = early.length > 0 ? rd.messages.filter((m) => !REPLICATION.has(m.type)) : rd.messages
      this.#send(early)
      await this.#o.storage.save({
        entries: rd.entries,
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
      })
      this.#send(late)
      if (rd.snapshot && rd.snapshot.meta.index > sm.appliedIndex && rd.snapshot.data.length > 0) {
        await sm.restore(rd.snapshot.data)
        this.#lastSnapshotIndex = rd.snapshot.meta.index
        this.#lastSnapshotBytes = rd.snapshot.data.length
        this.#logBytes = 0
      }
      if (rd.snapshot) this.#applied = Math.max(this.#applied, rd.snapshot.meta.index)
      const normal = rd.committedEntries.filter((e) => e.type === 'normal' && e.index > sm.appliedIndex)
      const results = normal.length > 0 ? await sm.applyEntries(normal) : []
      const resultOf = new Map(normal.map((e, i) => [e.index, results[i]]))
      for (const e of rd.committedEntries) {
        const p = this.#proposals.get(e.index)
        if (p) {
          if (p.term === e.term) p.resolve({ index: e.index, result: resultOf.get(e.index) })
          else p.reject(new OutcomeUnknownError(`entry ${e.index} was replaced after a leadership change; not applied`))
        }
        this.#applied = e.index
        this.#logBytes += e.data.length
      }
      for (const rs of rd.readStates) {
        const p = this.#reads.get(rs.requestId)
        if (p) this.#readyReads.push({ index: rs.index, resolve: p.resolve })
      }
      this.#readyReads = this.#readyReads.filter((r) => {
        if (this.#applied < r.index) return true
        r.resolve(r.index)
        return false
      })
      if (rd.softState) {
        this.#softState = rd.softState
        if (rd.softState.role !== 'leader') this.#failProposalsOnStepDown()
        this.emit('softState', rd.softState)
      }
      this.core.advance()
      this.emit('applied', this.#applied)
      this.#maybeSnapshot()
    }
  }

  #send(messages: Message[]): void {
    for (const m of messages) {
      this.#o.transport.send(m.to, m)
      if (m.type === 'installSnapshot') this.core.reportSnapshot(m.to, true)
    }
  }

  /** A deposed leader's pending proposals may still commit under the new leader: their outcome is unknown. */
  #failProposalsOnStepDown(): void {
    for (const [index, p] of this.#proposals) {
      if (index > this.core.commitIndex) p.reject(new OutcomeUnknownError('leadership lost before the write committed; it may or may not take effect'))
    }
  }

  /**
   * Starts a snapshot in the background once enough entries were applied: the
   * state machine captures its state at once and encodes it without blocking
   * the loop (a stalled loop misses heartbeats and costs an election).
   * Enough: the log since the last snapshot is as large as that snapshot
   * (Raft thesis §5.1.3), so encoding and storing snapshots costs at most
   * about one byte per byte logged however large the state grows; with a
   * floor (snapshotEvery entries) and a ceiling (MAX_LOG_FACTOR times that).
   */
  #maybeSnapshot(): void {
    const every = this.#o.snapshotEvery ?? 10_000
    const sm = this.#o.stateMachine
    const since = sm.appliedIndex - this.#lastSnapshotIndex
    if (this.#snapshotting || since < every) return
    if (this.#logBytes < this.#lastSnapshotBytes && since < every * MAX_LOG_FACTOR) return
    this.#snapshotting = true
    this.#logBytes = 0
    sm.snapshot().then(
      (snap) => {
        this.#lastSnapshotBytes = snap.data.length
        this.#pendingCompaction = snap
        this.#kick()
      },
      (err: Error) => {
        this.#snapshotting = false
        this.#o.log?.warn(`raft: snapshot failed: ${err.message}`)
      },
    )
  }

  /**
   * Compacts the in-memory log at once and the stored one in the background:
   * the Raft loop does not wait for the snapshot's write (the stored log still
   * holds every entry until the snapshot is on disk).
   */
  #compact(snap: { index: number; data: Uint8Array }): void {
    this.#pendingCompaction = null
    this.#snapshotting = false
    const meta = this.core.compact(snap.index, snap.data)
    if (meta instanceof Error) return
    this.#lastSnapshotIndex = snap.index
    this.#o.storage.compact({ meta, data: snap.data }).then(
      () => this.#o.log?.info(`raft: snapshot at index ${snap.index}, log compacted`),
      (err: Error) => this.#fail(err),
    )
  }

}
