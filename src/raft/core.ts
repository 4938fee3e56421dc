import {
  applyConfChange, checkConfChange, decodeConfChange, encodeConfChange, isNodeId, normalizeConf, quorum,
} from './confchange.ts'
import { RaftLog } from './log.ts'
import { Progress, type ProgressState } from './progress.ts'
import { hashString, seededRandom, type Random } from './random.ts'
import type {
  AppendEntriesMessage, AppendEntriesResponseMessage, ConfChange, ConfState, DropReason, Entry, EntryType,
  HardState, HeartbeatMessage, HeartbeatResponseMessage, InstallSnapshotMessage, Message, NodeId,
  PersistentState, ProposeError, ProposeResult, Ready, Rejection, ReadState, RequestResult, RequestVoteMessage,
  RequestVoteResponseMessage, Role, Snapshot, SnapshotMeta, SoftState, StepResult,
} from './types.ts'
import { validateMessage } from './validate.ts'

export interface RaftConfig {
  id: NodeId
  /**
   * Voters of a brand-new cluster. Used only when `storage` is absent/empty:
   * the core then creates a "genesis" snapshot {index 1, term 1, conf} that
   * the first Ready asks the application to persist. Every founding member
   * must be given the same list. Omit it for a node that will join an existing
   * cluster: such a node stays passive until a leader sends it a snapshot.
   */
  voters?: NodeId[]
  learners?: NodeId[]
  /** State-machine bytes of the genesis snapshot (default: empty). */
  genesisData?: Uint8Array
  /** Durable state loaded at restart. */
  storage?: PersistentState
  /** Index the application's state machine already reflects (default: the snapshot index). */
  applied?: number
  /** Election timeout in ticks; actual timeouts are random in [electionTick, 2*electionTick). Default 10. */
  electionTick?: number
  /** Heartbeat interval in ticks, < electionTick. Default 1. */
  heartbeatTick?: number
  /** Source of randomness for election timeouts. Default: seededRandom(seed ?? hash(id)). */
  random?: Random
  seed?: number
  /** PreVote (thesis §9.6). Default true. */
  preVote?: boolean
  /** CheckQuorum + leader lease on votes (thesis §6.2, §4.2.3). Default true. */
  checkQuorum?: boolean
  /** Soft cap on entry payload bytes per AppendEntries. Default 1 MiB. */
  maxSizePerMsg?: number
  /** Max unacknowledged AppendEntries per follower in replicate state. Default 256. */
  maxInflight?: number
}

export interface ProgressStatus {
  match: number
  next: number
  state: ProgressState
  learner: boolean
  recentActive: boolean
}

export interface RaftStatus {
  id: NodeId
  role: Role
  term: number
  vote: NodeId | null
  leader: NodeId | null
  commit: number
  applied: number
  firstIndex: number
  lastIndex: number
  conf: ConfState
  leadTransferee: NodeId | null
  /** Only on the leader. */
  progress?: Record<NodeId, ProgressStatus>
}

interface PendingRead {
  requestId: string
  index: number
  ctx: number
  acks: Set<NodeId>
}

interface ReadyMarks {
  entries: Entry[]
  snapshotIndex: number | null
  hardState: HardState | null
  applied: number
}

type CampaignKind = 'preVote' | 'election' | 'transfer'

const EMPTY = new Uint8Array(0)
const EMPTY_CONF: ConfState = { voters: [], learners: [] }

function sameConf(a: ConfState, b: ConfState): boolean {
  return a.voters.length === b.voters.length && a.learners.length === b.learners.length &&
    a.voters.every((v, i) => v === b.voters[i]) && a.learners.every((v, i) => v === b.learners[i])
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function hasState(s: PersistentState | undefined): s is PersistentState {
  if (s === undefined) return false
  const hs = s.hardState
  return !!s.snapshot || s.entries.length > 0 || hs.term > 0 || hs.commit > 0 || hs.vote !== null
}

/**
 * A deterministic Raft state machine (cf. etcd/raft's RawNode). It performs
 * no IO and reads no clock: time advances only through tick(), input arrives
 * through step()/propose()/..., and output is collected with ready().
 *
 * Driving loop (single-threaded; the core is not re-entrant):
 *
 *   every tick interval:  core.tick()
 *   on a peer message:    core.step(decoded)
 *   then, while core.hasReady():
 *     const rd = core.ready()
 *     1. durably write, atomically or in this order:
 *          rd.snapshot  (if any: store it and drop the WHOLE stored log),
 *          rd.entries   (replacing stored entries with index >= rd.entries[0].index),
 *          rd.hardState (if any).
 *     2. only then send rd.messages (votes and acks promise that 1 is durable),
 *     3. if rd.snapshot: restore the state machine from it; then apply
 *        rd.committedEntries in order (may overlap with 2),
 *     4. serve rd.readStates once applied >= index,
 *     5. core.advance().
 *   tick/step/propose may be called between ready() and advance(); ready()
 *   may not be called again before advance().
 *
 * Membership: a configuration takes effect on a node as soon as its conf
 * change entry is appended to that node's log, and is reverted if the entry
 * is truncated (Raft thesis §4.1). Changes are single-step (one voter
 * added/removed at a time), at most one may be uncommitted, and a leader only
 * accepts one after committing an entry of its own term (the fix for the
 * single-server change bug reported by Ongaro on raft-dev, 2015). The
 * application sees conf changes in committedEntries for information only.
 */
export class RaftCore {
  readonly id: NodeId
  readonly electionTimeout: number
  readonly heartbeatTimeout: number
  readonly preVote: boolean
  readonly checkQuorum: boolean
  private readonly maxSizePerMsg: number
  private readonly maxInflight: number
  private readonly random: Random

  private readonly log: RaftLog
  private term_: number
  private vote_: NodeId | null
  private lead: NodeId | null = null
  private role_: Role = 'follower'

  /** Configuration at log.snapshotIndex. */
  private baseConf: ConfState
  /** baseConf plus every conf change in the log (committed or not). */
  private conf: ConfState = EMPTY_CONF
  private voterSet = new Set<NodeId>()
  /** Index of the last conf change entry in the log, 0 if none. */
  private lastConfIndex = 0
  /** Latest snapshot this node has (to send to followers that are too far behind). */
  private snapshot_: Snapshot | null

  private electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedElectionTimeout = 0
  private readonly votes = new Map<NodeId, boolean>()
  private readonly progress = new Map<NodeId, Progress>()
  private leadTransferee: NodeId | null = null
  private needBroadcast = false
  private needReadHeartbeat = false

  private readSeq = 0
  private pendingReads: PendingRead[] = []
  private readsAwaitingCommit: string[] = []
  private readStates: ReadState[] = []

  private msgs: Message[] = []
  private prevHardState: HardState
  private prevSoftState: SoftState = { leader: null, role: 'follower' }
  private inFlightReady: ReadyMarks | null = null

  /** Counters for observability: why incoming messages were dropped. */
  readonly stats: { stepped: number; dropped: Partial<Record<DropReason, number>> } = { stepped: 0, dropped: {} }

  constructor(cfg: RaftConfig) {
    if (!isNodeId(cfg.id)) throw new Error('raft: invalid node id')
    this.id = cfg.id
    this.electionTimeout = cfg.electionTick ?? 10
    this.heartbeatTimeout = cfg.heartbeatTick ?? 1
    if (!(this.heartbeatTimeout >= 1 && this.electionTimeout > this.heartbeatTimeout)) {
      throw new Error('raft: need 1 <= heartbeatTick < electionTick')
    }
    this.preVote = cfg.preVote ?? true
    this.checkQuorum = cfg.checkQuorum ?? true
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024
    this.maxInflight = Math.max(1, cfg.maxInflight ?? 256)
    this.random = cfg.random ?? seededRandom(cfg.seed ?? hashString(cfg.id))

    const st = cfg.storage
    if (hasState(st)) {
      const snap = st.snapshot ?? null
      this.log = new RaftLog(snap?.meta ?? null, st.entries, st.hardState.commit, cfg.applied)
      this.term_ = st.hardState.term
      this.vote_ = st.hardState.vote
      this.snapshot_ = snap
      this.baseConf = snap ? normalizeConf(snap.meta.conf) : EMPTY_CONF
      this.prevHardState = { ...st.hardState }
      if (this.term_ < this.log.lastTerm()) throw new Error('raft: stored term older than the log')
    } else if (cfg.voters && cfg.voters.length > 0) {
      const conf = normalizeConf({ voters: cfg.voters, learners: cfg.learners ?? [] })
      const genesis: Snapshot = { meta: { index: 1, term: 1, conf }, data: cfg.genesisData ?? EMPTY }
      this.log = new RaftLog(null, [], 0)
      this.log.restore(genesis)
      this.term_ = 1
      this.vote_ = null
      this.snapshot_ = genesis
      this.baseConf = conf
      this.prevHardState = { term: 0, vote: null, commit: 0 }
    } else {
      this.log = new RaftLog(null, [], 0)
      this.term_ = 0
      this.vote_ = null
      this.snapshot_ = null
      this.baseConf = EMPTY_CONF
      this.prevHardState = { term: 0, vote: null, commit: 0 }
    }
    this.recomputeConf()
    this.becomeFollower(this.term_, null)
  }

  // -------------------------------------------------------------------------
  // Introspection

  get role(): Role { return this.role_ }
  get term(): number { return this.term_ }
  get vote(): NodeId | null { return this.vote_ }
  get leader(): NodeId | null { return this.lead }
  get commitIndex(): number { return this.log.committed }
  get appliedIndex(): number { return this.log.applied }
  get firstIndex(): number { return this.log.firstIndex() }
  get lastIndex(): number { return this.log.lastIndex() }
  get transferee(): NodeId | null { return this.leadTransferee }

  /** Term of the entry at `i` (the snapshot's term at the snapshot index), undefined if unknown. */
  logTerm(i: number): number | undefined { return this.log.term(i) }

  /** In-memory entries in [lo, hi). */
  entries(lo: number, hi: number): Entry[] { return this.log.slice(lo, hi) }

  /** Current membership (latest in the log, possibly uncommitted). */
  confState(): ConfState { return { voters: [...this.conf.voters], learners: [...this.conf.learners] } }

  snapshotMeta(): SnapshotMeta | null { return this.snapshot_?.meta ?? null }

  hardState(): HardState { return { term: this.term_, vote: this.vote_, commit: this.log.committed } }

  status(): RaftStatus {
    const s: RaftStatus = {
      id: this.id, role: this.role_, term: this.term_, vote: this.vote_, leader: this.lead,
      commit: this.log.committed, applied: this.log.applied, firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(), conf: this.confState(), leadTransferee: this.leadTransferee,
    }
    if (this.role_ === 'leader') {
      s.progress = {}
      for (const [id, pr] of this.progress) {
        s.progress[id] = {
          match: id === this.id ? this.log.stableIndex : pr.match, next: pr.next, state: pr.state,
          learner: !this.voterSet.has(id), recentActive: pr.recentActive,
        }
      }
    }
    return s
  }

  // -------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role_ === 'leader') this.tickHeartbeat()
    else this.tickElection()
  }

  /**
   * Handles one message from a peer. `raw` is untrusted: it is validated
   * first, and anything malformed, misaddressed, stale or unexpected is
   * dropped and counted in `stats.dropped` instead of throwing.
   */
  step(raw: unknown): StepResult {
    const m = validateMessage(raw)
    if (m instanceof Error) return this.drop('malformed', m.message)
    if (m.to !== this.id) return this.drop('wrongRecipient')
    if (m.from === this.id) return this.drop('fromSelf')
    this.stats.stepped++

    if (m.term > this.term_) {
      if (m.type === 'requestVote') {
        // Leader lease (thesis §4.2.3): while we hear from a leader, a higher
        // term vote request is from a disruptive node (removed, or rejoining
        // after a partition) and must not depose a healthy leader. Transfers
        // are explicitly asked for by the leader and bypass it.
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTimeout
        if (inLease && !m.transfer) return this.drop('inLease')
      }
      if (m.type === 'requestVote' && m.preVote) {
        // PreVote never changes our state.
      } else if (m.type === 'requestVoteResponse' && m.preVote && m.granted) {
        // A granted pre-vote carries the term we asked for; we adopt it only
        // when we actually campaign.
      } else if (m.type === 'appendEntries' || m.type === 'heartbeat' || m.type === 'installSnapshot') {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, null)
      }
    } else if (m.term < this.term_) {
      if (m.type === 'appendEntries' || m.type === 'heartbeat') {
        // A stale leader (e.g. healed from a partition). With PreVote and
        // CheckQuorum our higher term might otherwise never reach it, so tell
        // it explicitly; it steps down on seeing the term.
        this.send<AppendEntriesResponseMessage>({
          type: 'appendEntriesResponse', from: this.id, to: m.from, term: this.term_,
          success: false, index: 0, hintIndex: 0, hintTerm: 0,
        })
      } else if (m.type === 'requestVote' && m.preVote) {
        // Let a lagging pre-candidate learn our term and give up.
        this.send<RequestVoteResponseMessage>({
          type: 'requestVoteResponse', from: this.id, to: m.from, term: this.term_, preVote: true, granted: false,
        })
      }
      return this.drop('staleTerm')
    }

    if (m.type === 'requestVote') return this.handleRequestVote(m)
    switch (this.role_) {
      case 'leader': return this.stepLeader(m)
      case 'candidate':
      case 'preCandidate': return this.stepCandidate(m)
      case 'follower': return this.stepFollower(m)
    }
  }

  /** Proposes an application command. Only the leader accepts proposals. */
  propose(data: Uint8Array): ProposeResult {
    if (!(data instanceof Uint8Array)) return this.reject('invalidProposal', 'data must be a Uint8Array')
    const r = this.checkCanPropose()
    if (r) return r
    const e = this.appendEntry('normal', data)
    return { ok: true, index: e.index, term: e.term }
  }

  /**
   * Proposes a single-step membership change. New nodes must be added as
   * learners and promoted once caught up. Removing or demoting the leader is
   * allowed: it keeps leading without counting itself until the change
   * commits, then steps down and hands over to the most up-to-date voter.
   */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const r = this.checkCanPropose()
    if (r) return r
    if (!this.committedInCurrentTerm()) {
      return this.reject('notReady', 'leader has not committed an entry of its term yet')
    }
    if (this.lastConfIndex > this.log.committed) {
      return this.reject('confChangePending', `conf change at ${this.lastConfIndex} not committed yet`)
    }
    const why = checkConfChange(this.conf, cc)
    if (why !== null) return this.reject('invalidConfChange', why)
    const e = this.appendEntry('confChange', encodeConfChange(cc))
    this.setConf(applyConfChange(this.conf, cc), e.index)
    return { ok: true, index: e.index, term: e.term }
  }

  /**
   * Starts a linearizable read (ReadIndex, thesis §6.4). On success a
   * ReadState with this requestId appears in a later Ready once a quorum has
   * confirmed this node is still the leader. If leadership is lost first the
   * request is silently dropped: callers must time out and retry.
   */
  readIndex(requestId: string): RequestResult {
    if (this.role_ !== 'leader') return this.reject('notLeader')
    if (!this.committedInCurrentTerm()) {
      // The commit index of a new leader may lag (§6.4 step 1); wait for the no-op to commit.
      this.readsAwaitingCommit.push(requestId)
      return { ok: true }
    }
    this.startRead(requestId)
    return { ok: true }
  }

  /**
   * Hands leadership to `to` (thesis §3.10): stop accepting proposals, bring
   * `to` up to date, then tell it to campaign immediately. Aborted if it has
   * not completed within an election timeout.
   */
  transferLeadership(to: NodeId): RequestResult {
    if (this.role_ !== 'leader') return this.reject('notLeader')
    if (to === this.id) return { ok: true }
    if (!this.voterSet.has(to) || !this.progress.has(to)) return this.reject('notVoter', `${to} is not a voter`)
    if (this.leadTransferee === to) return { ok: true }
    this.leadTransferee = to
    this.electionElapsed = 0
    const pr = this.progress.get(to)!
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to)
    else this.maybeSendAppend(to, true)
    return { ok: true }
  }

  /**
   * The application has durably stored a snapshot of its state machine as of
   * `index` (<= applied). The core records it (to send to followers that fall
   * behind) and discards its log up to `index`. Returns the metadata the
   * application must store next to `data`; after that it may delete its stored
   * entries <= index.
   */
  compact(index: number, data: Uint8Array): SnapshotMeta | Error {
    if (!Number.isSafeInteger(index)) return new Error('compact: bad index')
    if (index <= this.log.snapshotIndex) return new Error(`compact: already compacted to ${this.log.snapshotIndex}`)
    if (index > this.log.applied) return new Error(`compact: ${index} not applied yet (applied ${this.log.applied})`)
    if (index > this.log.stableIndex) return new Error(`compact: ${index} not persisted yet`)
    const meta: SnapshotMeta = { index, term: this.log.term(index)!, conf: this.confAt(index) }
    this.baseConf = meta.conf
    this.log.compact(index)
    this.snapshot_ = { meta, data }
    return meta
  }

  /** Transport feedback: the snapshot sent to `to` was (not) delivered. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.role_ === 'leader' ? this.progress.get(to) : undefined
    if (!pr || pr.state !== 'snapshot') return
    if (!ok) pr.pendingSnapshot = 0
    pr.becomeProbe()
    // Wait for the follower's answer (or a heartbeat round) before probing.
    pr.probeSent = true
  }

  /** Transport feedback: `to` could not be reached; stop pipelining to it. */
  reportUnreachable(to: NodeId): void {
    const pr = this.role_ === 'leader' ? this.progress.get(to) : undefined
    if (pr && pr.state === 'replicate') pr.becomeProbe()
  }

  // -------------------------------------------------------------------------
  // Output

  hasReady(): boolean {
    if (this.role_ === 'leader' && (this.needBroadcast || this.needReadHeartbeat)) return true
    if (this.msgs.length > 0 || this.readStates.length > 0) return true
    if (this.log.pendingSnapshot !== null) return true
    if (this.log.lastIndex() > this.log.stableIndex) return true
    if (this.log.committed > this.log.applied) return true
    if (!sameHardState(this.hardState(), this.prevHardState)) return true
    return this.lead !== this.prevSoftState.leader || this.role_ !== this.prevSoftState.role
  }

  /** Collects pending work. See the class comment for the persistence contract. */
  ready(): Ready {
    if (this.inFlightReady !== null) throw new Error('raft: ready() called again before advance()')
    this.flush()
    const entries = this.log.unstableEntries()
    const committedEntries = this.log.nextCommittedEntries()
    const rd: Ready = { entries, messages: this.msgs, committedEntries, readStates: this.readStates }
    this.msgs = []
    this.readStates = []
    const hs = this.hardState()
    if (!sameHardState(hs, this.prevHardState)) rd.hardState = hs
    if (this.lead !== this.prevSoftState.leader || this.role_ !== this.prevSoftState.role) {
      rd.softState = { leader: this.lead, role: this.role_ }
      this.prevSoftState = rd.softState
    }
    const snap = this.log.pendingSnapshot
    if (snap !== null) rd.snapshot = snap
    this.inFlightReady = {
      entries,
      snapshotIndex: snap ? snap.meta.index : null,
      hardState: rd.hardState ?? null,
      applied: committedEntries.length > 0 ? committedEntries[committedEntries.length - 1]!.index : 0,
    }
    return rd
  }

  /** Acknowledges that the last Ready was fully handled (persisted, sent, applied). */
  advance(): void {
    const mk = this.inFlightReady
    if (mk === null) return
    this.inFlightReady = null
    if (mk.snapshotIndex !== null) this.log.stableSnapTo(mk.snapshotIndex)
    this.log.stableEntries(mk.entries)
    if (mk.hardState !== null) this.prevHardState = mk.hardState
    if (mk.applied > 0) this.log.appliedTo(Math.min(mk.applied, this.log.committed))
    // The leader counts itself towards a quorum only for entries it has
    // persisted (thesis §10.2.1: it may send before its own write completes).
    if (this.role_ === 'leader' && this.maybeCommit()) this.onCommitAdvanced()
  }

  // -------------------------------------------------------------------------
  // Roles

  private reset(term: number): void {
    if (term !== this.term_) {
      this.term_ = term
      this.vote_ = null
    }
    this.lead = null
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout)
    this.leadTransferee = null
    this.votes.clear()
    this.progress.clear()
    this.needBroadcast = false
    this.needReadHeartbeat = false
    this.pendingReads = []
    this.readsAwaitingCommit = []
  }

  private becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term)
    this.lead = lead
    this.role_ = 'follower'
  }

  private becomePreCandidate(): void {
    // Unlike a real candidate, neither term nor vote changes (thesis §9.6).
    const term = this.term_
    this.reset(term)
    this.role_ = 'preCandidate'
  }

  private becomeCandidate(): void {
    this.reset(this.term_ + 1)
    this.vote_ = this.id
    this.role_ = 'candidate'
  }

  private becomeLeader(): void {
    this.reset(this.term_)
    this.lead = this.id
    this.role_ = 'leader'
    const next = this.log.lastIndex() + 1
    for (const id of [...this.conf.voters, ...this.conf.learners]) this.progress.set(id, new Progress(next))
    if (!this.progress.has(this.id)) this.progress.set(this.id, new Progress(next))
    const self = this.progress.get(this.id)!
    self.recentActive = true
    // A no-op of the new term lets the leader commit (and learn the commit
    // point of) entries from earlier terms (§5.4.2, §8).
    this.appendEntry('noop', EMPTY)
  }

  private promotable(): boolean {
    return this.voterSet.has(this.id) && this.log.pendingSnapshot === null
  }

  private campaign(kind: CampaignKind): void {
    if (!this.promotable()) return
    let voteTerm: number
    if (kind === 'preVote') {
      this.becomePreCandidate()
      voteTerm = this.term_ + 1
    } else {
      this.becomeCandidate()
      voteTerm = this.term_
    }
    const r = this.poll(this.id, true)
    if (r === 'won') {
      if (kind === 'preVote') this.campaign('election')
      else this.becomeLeader()
      return
    }
    for (const v of this.conf.voters) {
      if (v === this.id) continue
      this.send<RequestVoteMessage>({
        type: 'requestVote', from: this.id, to: v, term: voteTerm,
        lastLogIndex: this.log.lastIndex(), lastLogTerm: this.log.lastTerm(),
        preVote: kind === 'preVote', transfer: kind === 'transfer',
      })
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted)
    let yes = 0
    let no = 0
    for (const v of this.conf.voters) {
      const g = this.votes.get(v)
      if (g === true) yes++
      else if (g === false) no++
    }
    const q = quorum(this.conf.voters.length)
    if (yes >= q) return 'won'
    if (no > this.conf.voters.length - q) return 'lost'
    return 'pending'
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.campaign(this.preVote ? 'preVote' : 'election')
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.checkQuorum) {
        // §6.2: a leader that cannot reach a quorum for an election timeout
        // steps down, so clients stop waiting on it and reads are not served
        // by a node that may have been deposed.
        if (!this.quorumActive()) {
          this.becomeFollower(this.term_, null)
          return
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id
      }
      if (this.leadTransferee !== null) this.leadTransferee = null
    }
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.state !== 'snapshot') continue
      // Snapshots can be lost like any message; retry if no answer arrives.
      if (++pr.snapshotElapsed >= 2 * this.electionTimeout) {
        pr.pendingSnapshot = 0
        pr.becomeProbe()
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0
      this.bcastHeartbeat()
    }
  }

  private quorumActive(): boolean {
    let active = 0
    for (const v of this.conf.voters) {
      if (v === this.id || this.progress.get(v)?.recentActive) active++
    }
    return active >= quorum(this.conf.voters.length)
  }

  // -------------------------------------------------------------------------
  // Message handling

  private stepLeader(m: Message): StepResult {
    switch (m.type) {
      case 'appendEntriesResponse': return this.handleAppendResponse(m)
      case 'heartbeatResponse': return this.handleHeartbeatResponse(m)
      default: return this.drop('unexpected', `${m.type} at leader`)
    }
  }

  private stepCandidate(m: Message): StepResult {
    switch (m.type) {
      case 'appendEntries':
      case 'heartbeat':
      case 'installSnapshot':
        // Someone won this term (§5.2).
        this.becomeFollower(m.term, m.from)
        return this.stepFollower(m)
      case 'requestVoteResponse': {
        if (m.preVote !== (this.role_ === 'preCandidate')) return this.drop('stale')
        if (!this.voterSet.has(m.from)) return this.drop('notMember')
        const r = this.poll(m.from, m.granted)
        if (r === 'won') {
          if (this.role_ === 'preCandidate') this.campaign('election')
          else this.becomeLeader()
        } else if (r === 'lost') {
          this.becomeFollower(this.term_, null)
        }
        return { ok: true }
      }
      default: return this.drop('unexpected', `${m.type} at ${this.role_}`)
    }
  }

  private stepFollower(m: Message): StepResult {
    switch (m.type) {
      case 'appendEntries':
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleAppendEntries(m)
      case 'heartbeat':
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleHeartbeat(m)
      case 'installSnapshot':
        this.electionElapsed = 0
        this.lead = m.from
        return this.handleSnapshot(m)
      case 'timeoutNow':
        if (m.from !== this.lead) return this.drop('unexpected', 'timeoutNow not from our leader')
        if (!this.promotable()) return this.drop('notMember', 'timeoutNow to a non-voter')
        this.campaign('transfer')
        return { ok: true }
      default: return this.drop('unexpected', `${m.type} at follower`)
    }
  }

  /**
   * Votes are granted WITHOUT consulting our own configuration (thesis §4.1):
   * our view may lag. A learner whose promotion it has not seen yet, or a
   * voter whose uncommitted removal sits in its log, may still be needed for
   * a quorum, and a candidate unknown to us may be a member we have not heard
   * of. Refusing such votes can deadlock the cluster. Disruption by removed
   * nodes is prevented by PreVote and the leader lease instead. Learners
   * still never vote in practice: they never campaign, candidates only ask
   * their own voters, and only votes from their own voters are counted.
   */
  private handleRequestVote(m: RequestVoteMessage): StepResult {
    // We may vote if we already voted for this candidate, or have not voted
    // and know no leader in this term; a pre-vote for a future term is
    // always considered (it commits us to nothing).
    const canVote = this.vote_ === m.from ||
      (this.vote_ === null && this.lead === null) ||
      (m.preVote && m.term > this.term_)
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      // Reply with the term of the request so a pre-candidate can count it.
      this.send<RequestVoteResponseMessage>({
        type: 'requestVoteResponse', from: this.id, to: m.from, term: m.term, preVote: m.preVote, granted: true,
      })
      if (!m.preVote) {
        this.electionElapsed = 0
        this.vote_ = m.from
      }
    } else {
      this.send<RequestVoteResponseMessage>({
        type: 'requestVoteResponse', from: this.id, to: m.from, term: this.term_, preVote: m.preVote, granted: false,
      })
    }
    return { ok: true }
  }

  private handleAppendEntries(m: AppendEntriesMessage): StepResult {
    if (m.prevLogIndex < this.log.committed) {
      // Everything up to our commit index matches any legitimate leader.
      this.sendAppendResponse(m.from, true, this.log.committed)
      return { ok: true }
    }
    const r = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.commit, m.entries)
    if (r === 'conflictWithCommitted') return this.drop('conflictWithCommitted')
    if (r === null) {
      // Fast backtracking: point the leader at the last index whose term
      // could possibly match instead of walking back one entry per RPC.
      const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm)
      this.send<AppendEntriesResponseMessage>({
        type: 'appendEntriesResponse', from: this.id, to: m.from, term: this.term_,
        success: false, index: m.prevLogIndex, hintIndex: hint.index, hintTerm: hint.term,
      })
      return { ok: true }
    }
    if (m.entries.some((e) => e.type === 'confChange') ||
        (r.truncatedAt !== 0 && r.truncatedAt <= this.lastConfIndex)) {
      this.recomputeConf()
    }
    this.sendAppendResponse(m.from, true, r.lastNew)
    return { ok: true }
  }

  private handleHeartbeat(m: HeartbeatMessage): StepResult {
    // The leader sends min(our match, its commit), so this never commits an
    // entry we do not share with it.
    this.log.commitTo(m.commit)
    this.send<HeartbeatResponseMessage>({
      type: 'heartbeatResponse', from: this.id, to: m.from, term: this.term_, context: m.context,
    })
    return { ok: true }
  }

  private handleSnapshot(m: InstallSnapshotMessage): StepResult {
    const meta = m.snapshot.meta
    if (meta.index <= this.log.committed) {
      this.sendAppendResponse(m.from, true, this.log.committed)
      return { ok: true }
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already have the snapshot's last entry: keep our log, just commit.
      this.log.commitTo(meta.index)
      this.sendAppendResponse(m.from, true, this.log.committed)
      return { ok: true }
    }
    this.log.restore(m.snapshot)
    this.snapshot_ = m.snapshot
    this.baseConf = normalizeConf(meta.conf)
    this.recomputeConf()
    this.sendAppendResponse(m.from, true, meta.index)
    return { ok: true }
  }

  private handleAppendResponse(m: AppendEntriesResponseMessage): StepResult {
    const pr = this.progress.get(m.from)
    if (!pr || m.from === this.id) return this.drop('notMember')
    pr.recentActive = true
    if (!m.success) {
      let probe = m.hintIndex
      if (m.hintTerm > 0) probe = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index
      if (pr.maybeDecrTo(m.index, probe)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        this.maybeSendAppend(m.from, true)
        return { ok: true }
      }
      return this.drop('stale')
    }
    if (m.index > this.log.lastIndex()) return this.drop('unexpected', 'ack beyond our log')
    const wasPaused = pr.isPaused(this.maxInflight)
    if (!pr.maybeUpdate(m.index)) return { ok: true }
    if (pr.state === 'probe') pr.becomeReplicate()
    else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === 'replicate') pr.freeLE(m.index)

    if (this.maybeCommit()) this.onCommitAdvanced()
    else if (wasPaused) this.maybeSendAppend(m.from, true)
    // Keep the pipeline full.
    while (this.role_ === 'leader' && this.maybeSendAppend(m.from, false)) { /* loop */ }
    if (this.role_ === 'leader' && m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from)
    }
    return { ok: true }
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): StepResult {
    const pr = this.progress.get(m.from)
    if (!pr || m.from === this.id) return this.drop('notMember')
    pr.recentActive = true
    pr.probeSent = false
    // If every in-flight append was lost the window would never reopen; a
    // heartbeat answer proves the path works, so free a slot.
    if (pr.state === 'replicate' && pr.inflights.length >= this.maxInflight) pr.inflights.shift()
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true)
    if (m.context > 0) this.ackRead(m.from, m.context)
    return { ok: true }
  }

  // -------------------------------------------------------------------------
  // Replication

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    const e: Entry = { index: this.log.lastIndex() + 1, term: this.term_, type, data }
    this.log.append([e])
    this.needBroadcast = true
    return e
  }

  /** Sends the next batch to `to` if flow control allows. Returns whether something was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to)
    if (!pr || to === this.id || pr.isPaused(this.maxInflight)) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === undefined) return this.sendSnapshot(to, pr)
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxSizePerMsg)
    if (entries.length === 0 && !sendIfEmpty) return false
    this.send<AppendEntriesMessage>({
      type: 'appendEntries', from: this.id, to, term: this.term_,
      prevLogIndex: prevIndex, prevLogTerm: prevTerm, entries, commit: this.log.committed,
    })
    pr.sentEntries(entries.length, prevIndex + entries.length)
    return true
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const s = this.snapshot_
    if (s === null || s.meta.index < this.log.snapshotIndex) return false
    this.send<InstallSnapshotMessage>({ type: 'installSnapshot', from: this.id, to, term: this.term_, snapshot: s })
    pr.becomeSnapshot(s.meta.index)
    return true
  }

  private sendAppendResponse(to: NodeId, success: boolean, index: number): void {
    this.send<AppendEntriesResponseMessage>({
      type: 'appendEntriesResponse', from: this.id, to, term: this.term_, success, index, hintIndex: 0, hintTerm: 0,
    })
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term_ })
  }

  private bcastHeartbeat(): void {
    const context = this.pendingReads.length > 0 ? this.pendingReads[this.pendingReads.length - 1]!.ctx : 0
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue
      this.send<HeartbeatMessage>({
        type: 'heartbeat', from: this.id, to: id, term: this.term_,
        commit: Math.min(pr.match, this.log.committed), context,
      })
    }
  }

  /** Work deferred so that many proposals/commits between two Readys share messages. */
  private flush(): void {
    if (this.role_ !== 'leader') {
      this.needBroadcast = false
      this.needReadHeartbeat = false
      return
    }
    if (this.needBroadcast) {
      this.needBroadcast = false
      for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true)
    }
    if (this.needReadHeartbeat) {
      this.needReadHeartbeat = false
      this.bcastHeartbeat()
    }
  }

  /**
   * Advances the commit index to the highest index replicated on a quorum of
   * voters, but only if that entry is from the current term (§5.4.2, the
   * Figure 8 rule); earlier entries then commit indirectly.
   */
  private maybeCommit(): boolean {
    const voters = this.conf.voters
    if (voters.length === 0) return false
    const matches = voters.map((v) => v === this.id ? this.log.stableIndex : this.progress.get(v)?.match ?? 0)
    matches.sort((a, b) => b - a)
    const idx = matches[quorum(voters.length) - 1]!
    if (idx > this.log.committed && this.log.term(idx) === this.term_) {
      this.log.commitTo(idx)
      return true
    }
    return false
  }

  private onCommitAdvanced(): void {
    this.needBroadcast = true
    if (this.readsAwaitingCommit.length > 0 && this.committedInCurrentTerm()) {
      const ids = this.readsAwaitingCommit
      this.readsAwaitingCommit = []
      for (const id of ids) this.startRead(id)
    }
    // Thesis §4.2.2: a leader that is not part of the new configuration
    // steps down once that configuration is committed.
    if (!this.voterSet.has(this.id) && this.log.committed >= this.lastConfIndex) this.stepDownAfterRemoval()
  }

  private stepDownAfterRemoval(): void {
    this.flush() // let followers learn the commit index
    let best: NodeId | null = null
    let bestMatch = -1
    for (const v of this.conf.voters) {
      const match = this.progress.get(v)?.match ?? 0
      if (match > bestMatch) { best = v; bestMatch = match }
    }
    if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best)
    this.becomeFollower(this.term_, null)
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term_
  }

  private checkCanPropose(): Rejection | null {
    if (this.role_ !== 'leader') return this.reject('notLeader')
    if (this.leadTransferee !== null) return this.reject('transferInProgress')
    return null
  }

  // -------------------------------------------------------------------------
  // ReadIndex

  private startRead(requestId: string): void {
    const index = this.log.committed
    if (this.voterSet.has(this.id) && quorum(this.conf.voters.length) === 1) {
      this.readStates.push({ requestId, index })
      return
    }
    this.pendingReads.push({ requestId, index, ctx: ++this.readSeq, acks: new Set() })
    this.needReadHeartbeat = true
  }

  private ackRead(from: NodeId, ctx: number): void {
    if (!this.voterSet.has(from)) return
    // A response to the heartbeat carrying `ctx` confirms every read
    // registered before that heartbeat was sent, i.e. every ctx' <= ctx.
    for (const r of this.pendingReads) {
      if (r.ctx > ctx) break
      r.acks.add(from)
    }
    this.releaseReads()
  }

  private releaseReads(): void {
    const q = quorum(this.conf.voters.length)
    while (this.pendingReads.length > 0) {
      const r = this.pendingReads[0]!
      let n = this.voterSet.has(this.id) ? 1 : 0
      for (const a of r.acks) if (this.voterSet.has(a) && a !== this.id) n++
      if (n < q) break
      this.pendingReads.shift()
      this.readStates.push({ requestId: r.requestId, index: r.index })
    }
  }

  // -------------------------------------------------------------------------
  // Membership

  private recomputeConf(): void {
    let c = this.baseConf
    let last = 0
    for (const e of this.log.allEntries()) {
      if (e.type !== 'confChange') continue
      const cc = decodeConfChange(e.data)
      if (!(cc instanceof Error)) c = applyConfChange(c, cc)
      last = e.index
    }
    this.setConf(c, last)
  }

  private confAt(index: number): ConfState {
    let c = this.baseConf
    for (const e of this.log.allEntries()) {
      if (e.index > index) break
      if (e.type !== 'confChange') continue
      const cc = decodeConfChange(e.data)
      if (!(cc instanceof Error)) c = applyConfChange(c, cc)
    }
    return c
  }

  private setConf(c: ConfState, lastConfIndex: number): void {
    const changed = !sameConf(this.conf, c)
    this.conf = c
    this.voterSet = new Set(c.voters)
    this.lastConfIndex = lastConfIndex
    if (changed) this.onConfChanged()
  }

  private onConfChanged(): void {
    if (this.role_ === 'leader') {
      const members = new Set([...this.conf.voters, ...this.conf.learners])
      for (const id of members) {
        if (this.progress.has(id)) continue
        const pr = new Progress(this.log.lastIndex() + 1)
        pr.recentActive = true // give a new member one CheckQuorum round to respond
        this.progress.set(id, pr)
      }
      for (const id of [...this.progress.keys()]) {
        if (id !== this.id && !members.has(id)) this.progress.delete(id)
      }
      if (this.leadTransferee !== null && !this.voterSet.has(this.leadTransferee)) this.leadTransferee = null
      // The quorum changed: commit and pending reads may be decidable now.
      if (this.maybeCommit()) this.onCommitAdvanced()
      if (this.role_ === 'leader') this.releaseReads()
    } else if (this.role_ !== 'follower' && !this.promotable()) {
      this.becomeFollower(this.term_, null)
    }
  }

  // -------------------------------------------------------------------------
  // Helpers

  private send<M extends Message>(m: M): void {
    this.msgs.push(m)
  }

  private drop(reason: DropReason, detail?: string): StepResult {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1
    return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail }
  }

  private reject(error: ProposeError, detail?: string): Rejection {
    const r: Rejection = { ok: false, error, leader: this.lead }
    if (detail !== undefined) r.detail = detail
    return r
  }
}
