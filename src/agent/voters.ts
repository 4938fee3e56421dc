// Keeping the voter set at its target size: promote a caught-up, active
// learner when voters are missing; one change at a time (the core enforces
// that too). Pure: the leader calls it on a timer with the Raft status.
import type { RaftStatus } from '../raft/core.ts'
import type { ConfChange } from '../raft/types.ts'

/** How far behind the leader's log a learner may be and still be promoted. */
export const PROMOTION_LAG = 16

export function nextVoterChange(status: RaftStatus, desiredVoters: number): ConfChange | null {
  if (status.role !== 'leader' || !status.progress) return null
  if (status.conf.voters.length >= desiredVoters) return null
  const candidates = status.conf.learners
    .map((id) => ({ id, p: status.progress![id] }))
    .filter((c) => c.p && c.p.recentActive && c.p.match + PROMOTION_LAG >= status.lastIndex)
    .sort((a, b) => b.p!.match - a.p!.match || (a.id < b.id ? -1 : 1))
  return candidates[0] ? { type: 'promote', nodeId: candidates[0].id } : null
}
