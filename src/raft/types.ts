// Plain-data types shared by the Raft core, its log and (later) the transport.
// Everything here must stay structurally cloneable / msgpackr-encodable: no
// classes, no Maps, no undefined-vs-missing distinctions that matter.

export type NodeId = string

export type EntryType = 'normal' | 'confChange' | 'noop'

/** One log entry. `data` is opaque to Raft except for `confChange` entries. */
export interface Entry {
  index: number
  term: number
  type: EntryType
  data: Uint8Array
}

/** State that must be durable before any message that depends on it is sent (Raft §5, Fig. 2 "persistent state"). */
export interface HardState {
  term: number
  vote: NodeId | null
  commit: number
}

/** Cluster membership. Voters elect leaders and form quorums; learners only receive the log. */
export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

export type ConfChangeType = 'addLearner' | 'promote' | 'demote' | 'remove'

/** A single-step membership change (Raft thesis §4.1). New members always join as learners first. */
export interface ConfChange {
  type: ConfChangeType
  nodeId: NodeId
}

export interface SnapshotMeta {
  /** Last log index covered by the snapshot. */
  index: number
  /** Term of the entry at `index`. */
  term: number
  /** Membership as of `index` (needed because the log that produced it is gone). */
  conf: ConfState
}

/** An application snapshot: opaque state-machine bytes plus Raft metadata. */
export interface Snapshot {
  meta: SnapshotMeta
  data: Uint8Array
}

/** What the application loads from durable storage when it (re)starts a node. */
export interface PersistentState {
  hardState: HardState
  /** Entries after the snapshot, contiguous. Entries at or below the snapshot index are ignored. */
  entries: Entry[]
  snapshot?: Snapshot | null
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

// ---------------------------------------------------------------------------
// Messages. Every message carries from/to/term so the transport can route it
// without understanding it and the core can apply the term rules uniformly.

interface MessageBase {
  from: NodeId
  to: NodeId
  term: number
}

export interface AppendEntriesMessage extends MessageBase {
  type: 'appendEntries'
  prevLogIndex: number
  prevLogTerm: number
  entries: Entry[]
  /** Leader's commit index (followers commit min(commit, last new entry)). */
  commit: number
}

export interface AppendEntriesResponseMessage extends MessageBase {
  type: 'appendEntriesResponse'
  success: boolean
  /** On success: highest index known to match the leader. On rejection: the rejected prevLogIndex. */
  index: number
  /**
   * Fast-backtracking hint on rejection (thesis §5.3 optimisation, etcd style):
   * the largest index whose term is <= the leader's prevLogTerm, and that term.
   * 0/0 on success.
   */
  hintIndex: number
  hintTerm: number
}

export interface HeartbeatMessage extends MessageBase {
  type: 'heartbeat'
  /** min(follower's match, leader commit): never asks a follower to commit entries it may not have. */
  commit: number
  /** ReadIndex round this heartbeat confirms (0 = none). */
  context: number
}

export interface HeartbeatResponseMessage extends MessageBase {
  type: 'heartbeatResponse'
  context: number
}

export interface RequestVoteMessage extends MessageBase {
  type: 'requestVote'
  lastLogIndex: number
  lastLogTerm: number
  /** PreVote round (thesis §9.6): `term` is the term the sender *would* use; nobody changes state. */
  preVote: boolean
  /** Campaign caused by a leadership transfer: receivers skip the leader-lease check (thesis §3.10). */
  transfer: boolean
}

export interface RequestVoteResponseMessage extends MessageBase {
  type: 'requestVoteResponse'
  preVote: boolean
  granted: boolean
}

/**
 * Carries a whole snapshot. The core treats it as one unit; a transport may
 * split `snapshot.data` into chunks and must reassemble it before step().
 * Its answer is an appendEntriesResponse (index = snapshot index on success).
 */
export interface InstallSnapshotMessage extends MessageBase {
  type: 'installSnapshot'
  snapshot: Snapshot
}

/** Leadership transfer: "start an election now, skipping PreVote" (thesis §3.10). */
export interface TimeoutNowMessage extends MessageBase {
  type: 'timeoutNow'
}

export type Message =
  | AppendEntriesMessage
  | AppendEntriesResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | RequestVoteMessage
  | RequestVoteResponseMessage
  | InstallSnapshotMessage
  | TimeoutNowMessage

export type MessageType = Message['type']

export const MESSAGE_TYPES: readonly MessageType[] = [
  'appendEntries', 'appendEntriesResponse', 'heartbeat', 'heartbeatResponse',
  'requestVote', 'requestVoteResponse', 'installSnapshot', 'timeoutNow',
]

// ---------------------------------------------------------------------------
// Results and the Ready batch.

export interface ReadState {
  requestId: string
  /** Serve the read once the local state machine has applied at least this index. */
  index: number
}

export interface SoftState {
  leader: NodeId | null
  role: Role
}

/**
 * Everything the core wants the application to do. See RaftCore.ready() for the contract.
 */
export interface Ready {
  /** Present when leader or role changed since the last Ready (informational, not persisted). */
  softState?: SoftState
  /** Persist if present. */
  hardState?: HardState
  /** Persist, discard the WHOLE stored log, and restore the state machine from it. */
  snapshot?: Snapshot
  /** Persist, replacing any stored entries with index >= entries[0].index. */
  entries: Entry[]
  /** Send only after the above is durable. */
  messages: Message[]
  /** Apply in order after the above is durable. */
  committedEntries: Entry[]
  /** Linearizable reads that may be served once applied >= index. */
  readStates: ReadState[]
}

export type DropReason =
  | 'malformed'
  | 'wrongRecipient'
  | 'fromSelf'
  | 'notMember'
  | 'staleTerm'
  | 'inLease'
  | 'unexpected'
  | 'stale'
  | 'conflictWithCommitted'

export type StepResult = { ok: true } | { ok: false; reason: DropReason; detail?: string }

export type ProposeError =
  | 'notLeader'
  | 'invalidProposal'
  | 'transferInProgress'
  | 'notReady'
  | 'confChangePending'
  | 'invalidConfChange'
  | 'notVoter'

/** A refused request; `leader` is a hint where to retry (null if unknown). */
export interface Rejection {
  ok: false
  error: ProposeError
  leader: NodeId | null
  detail?: string
}

export type ProposeResult = { ok: true; index: number; term: number } | Rejection

export type RequestResult = { ok: true } | Rejection
