// Commands are the only way cluster state changes. The leader stamps every id
// and time into a command before proposing it, so apply() stays deterministic.
import type {
  Allocation, ClientStatus, Deployment, DeploymentStatus, DesiredTransition, DrainStrategy, Evaluation, JobSpec, LastDrain, Member, Node, NodeStatus,
  ScalingEvent, ServiceHealth, TaskState,
} from '../structs/index.ts'

/** An evaluation as the leader creates it; the store adds the indexes. */
export type NewEval = Omit<Evaluation, 'createIndex' | 'modifyIndex'>
/** An allocation as a plan places it; the store adds the indexes. */
export type NewAlloc = Omit<Allocation, 'createIndex' | 'modifyIndex'>
export type NewNode = Omit<Node, 'createIndex' | 'modifyIndex'>
/** A deployment as the scheduler creates it; the store adds the indexes. */
export type NewDeployment = Omit<Deployment, 'createIndex' | 'modifyIndex'>

/** A deployment's status moved by a plan (superseded, job stopped). */
export interface DeploymentStatusChange {
  deploymentId: string
  status: DeploymentStatus
  statusDescription: string
}

export interface AllocStop {
  allocId: string
  description: string
  /** Set when the client will never report again (node down): the alloc is lost. */
  lost?: boolean
}

/** An allocation moved to a newer job version in place (no restart). */
export interface AllocVersionUpdate {
  allocId: string
  jobVersion: number
  /** The deployment of that version adopts the allocation (absent in entries written before it existed). */
  deploymentId?: string
}

export interface AllocClientUpdate {
  allocId: string
  clientStatus: ClientStatus
  clientDescription: string
  taskStates: Record<string, TaskState>
  /** The client's health verdict, once decided (absent in entries written before it existed). */
  deploymentStatus?: { healthy: boolean; timestamp: number }
  /** Checked services' health by name; absent when the allocation has no checked service. */
  serviceHealth?: Record<string, ServiceHealth>
}

export interface GroupScalingEvent {
  group: string
  event: ScalingEvent
}

/** The node drainer's request for one allocation. */
export interface AllocTransition {
  allocId: string
  transition: DesiredTransition
}

export type Command =
  /** `evals`: system jobs to evaluate for the node (absent in entries written before they existed). */
  | { type: 'NodeRegister'; node: NewNode; time: number; evals?: NewEval[] }
  | { type: 'NodeStatusUpdate'; nodeId: string; status: NodeStatus; description: string; time: number; evals: NewEval[] }
  /**
   * `checkIndex`: register only if the job's modify index is this (0: only if it does not exist).
   * `scalingEvent`: a count change (`job scale`, the autoscaler) recorded in the group's scaling history with it.
   */
  | { type: 'JobRegister'; spec: JobSpec; time: number; eval: NewEval; checkIndex?: number; scalingEvent?: GroupScalingEvent }
  /** A decision of the autoscaler that changed nothing, recorded in the group's scaling history. */
  | { type: 'ScalingEventRecord'; jobId: string; scalingEvent: GroupScalingEvent; time: number }
  /** `node eligibility`: refused (conflict) when enabling a node that is draining. */
  | { type: 'NodeEligibility'; nodeId: string; eligible: boolean; time: number }
  /** Starts (or changes) a drain: the node becomes ineligible. */
  | { type: 'NodeDrain'; nodeId: string; drain: DrainStrategy; time: number }
  /**
   * Ends a drain: 'complete' (nothing left; the node stays ineligible; refused
   * when the node is not draining) or 'canceled' (`--disable`; eligibility as given).
   */
  | { type: 'NodeDrainEnd'; nodeId: string; outcome: LastDrain['status']; eligible: boolean; time: number }
  /** The drainer marks allocations to migrate; `evals` get their jobs scheduled. */
  | { type: 'AllocDesiredTransition'; transitions: AllocTransition[]; evals: NewEval[]; time: number }
  | { type: 'JobDeregister'; jobId: string; purge: boolean; time: number; eval: NewEval }
  | {
      type: 'PlanApply'
      evalId: string
      place: NewAlloc[]
      stop: AllocStop[]
      /** In-place updates; absent in entries written before they existed. */
      inPlace?: AllocVersionUpdate[]
      /** The evaluation as the scheduler leaves it (complete, blocked, ...). */
      evalUpdate: Pick<Evaluation, 'status' | 'statusDescription' | 'failedGroups' | 'modifyTime'>
      /** Follow-up evaluations (delayed reschedules, blocked retries). */
      newEvals: NewEval[]
      /** A deployment for the job's current version, created by this plan. */
      deployment?: NewDeployment
      /** Older deployments this plan ends (superseded by a newer version, job stopped). */
      deploymentUpdates?: DeploymentStatusChange[]
      time: number
    }
  | { type: 'AllocClientUpdate'; updates: AllocClientUpdate[]; time: number; evals: NewEval[] }
  /**
   * The deployment watcher's (or a user's) verdict: failed, successful (the version becomes stable), paused, running.
   * `revert`: with auto_revert, the stable spec registered again as a new version, evaluated by `eval`.
   */
  | { type: 'DeploymentStatusUpdate'; deploymentId: string; status: DeploymentStatus; statusDescription: string; time: number; eval?: NewEval; revert?: JobSpec }
  /** Promotes the canaries of `groups` (absent: every group with canaries); `eval` rolls the rest. */
  | { type: 'DeploymentPromote'; deploymentId: string; groups?: string[]; time: number; eval: NewEval }
  | { type: 'EvalUpdate'; evalId: string; status: Evaluation['status']; statusDescription: string; time: number }
  /** `cas`: 0 = create only; N = only if the variable's modifyIndex is N. */
  | { type: 'VarPut'; path: string; value: string; cas?: number; time: number }
  | { type: 'VarDelete'; path: string; cas?: number; time: number }
  | { type: 'MemberUpsert'; member: Omit<Member, 'createIndex' | 'modifyIndex'>; time: number }
  | { type: 'MemberRemove'; id: string; time: number }
  /** Removes what the leader found collectable (fsm/gc.ts); what is no longer collectable when it applies stays. */
  | { type: 'StateGc'; evals: string[]; allocs: string[]; jobs: string[]; time: number }

export type CommandType = Command['type']

/** What applying a command answered; failures are deterministic and change nothing. */
export type ApplyResult =
  | { ok: true; index: number }
  | { ok: false; index: number; error: string; code: 'not-found' | 'conflict' | 'invalid'; current?: number }
