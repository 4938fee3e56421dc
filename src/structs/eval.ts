export type EvalTrigger = 'job-register' | 'job-deregister' | 'job-scaling' | 'node-update' | 'node-drain' | 'alloc-failure' | 'retry' | 'deployment-watcher'
export type EvalStatus = 'pending' | 'complete' | 'blocked' | 'failed'

/** Why placements of one group failed: counts per reason, for `job status`/`job plan`. */
export interface PlacementFailure {
  /** Allocations of the group that could not be placed. */
  unplaced: number
  nodesEvaluated: number
  /** Reason → number of nodes filtered for it. */
  filtered: Record<string, number>
  /** Reason → nodes exhausted for it, e.g. "memory". */
  exhausted: Record<string, number>
  /** Per-node lines, e.g. "node dev-1: memory exhausted (need 512 MB, free 128 MB)". */
  details: string[]
}

export interface Evaluation {
  id: string
  jobId: string
  triggeredBy: EvalTrigger
  status: EvalStatus
  statusDescription: string
  nodeId?: string
  failedGroups: Record<string, PlacementFailure>
  /** Not to be processed before this time (delayed reschedule). */
  waitUntil?: number
  createTime: number
  modifyTime: number
  createIndex: number
  modifyIndex: number
}
