// Keeping the voter set healthy and at its target size, one change at a time
// (the core allows no more): re-add a known member that is alive but not in
// the configuration (removed during a partition) as a learner; promote a
// caught-up, active learner while fewer than `desired` voters are healthy;
// remove voters (and learners) that gossip has declared dead or gone for
// longer than a grace period; demote a voter beyond `desired`. Removing a dead
// voter never costs quorum: the live voters that formed a majority of the old
// configuration form one of the smaller configuration too. Pure: the leader
// calls it on a timer.
import type { RaftStatus } from '../raft/core.ts'
import type { ConfChange } from '../raft/types.ts'

/** How far behind the leader's log a learner may be and still be promoted. */
export const PROMOTION_LAG = 16
/** How long a member must be dead before it is removed from the configuration. */
export const DEAD_MEMBER_GRACE_MS = 5_000

export type Liveness = 'alive' | 'suspect' | 'dead' | 'left'

export interface VoterInputs {
  status: RaftStatus
  desired: number
  /** Every member the cluster knows (the members table). */
  members: readonly string[]
  /** Gossip's view of a member; undefined when gossip does not know it (counts as alive). */
  liveness: (id: string) => Liveness | undefined
  /** Since when gossip has reported the member dead or left (ms), if it does. */
  goneSince: (id: string) => number | undefined
  now: number
}

const gone = (l: Liveness | undefined) => l === 'dead' || l === 'left'

export function nextVoterChange(i: VoterInputs): ConfChange | null {
  const { status } = i
  if (status.role !== 'leader' || !status.progress) return null
  // A member removed while it was unreachable (a long partition) is back: it rejoins as a learner.
  const inConf = new Set([...status.conf.voters, ...status.conf.learners])
  const returning = i.members.find((id) => !inConf.has(id) && i.liveness(id) === 'alive')
  if (returning) return { type: 'addLearner', nodeId: returning }
  const healthyVoters = status.conf.voters.filter((id) => id === status.id || !gone(i.liveness(id)))
  if (healthyVoters.length < i.desired) {
    const candidate = status.conf.learners
      .filter((id) => i.liveness(id) === 'alive' || i.liveness(id) === undefined)
      .map((id) => ({ id, p: status.progress![id] }))
      .filter((c) => c.p && c.p.recentActive && c.p.match + PROMOTION_LAG >= status.lastIndex)
      .sort((a, b) => b.p!.match - a.p!.match || (a.id < b.id ? -1 : 1))[0]
    if (candidate) return { type: 'promote', nodeId: candidate.id }
  }
  const expired = (id: string) => id !== status.id && gone(i.liveness(id)) && i.now - (i.goneSince(id) ?? i.now) >= DEAD_MEMBER_GRACE_MS
  const deadVoter = status.conf.voters.find(expired)
  if (deadVoter) return { type: 'remove', nodeId: deadVoter }
  const deadLearner = status.conf.learners.find(expired)
  if (deadLearner) return { type: 'remove', nodeId: deadLearner }
  // More healthy voters than wanted (a dead voter came back after its
  // replacement was promoted): demote one, never the leader, the least
  // caught up first. An even count adds no fault tolerance, only latency.
  if (healthyVoters.length > i.desired) {
    const extra = healthyVoters.filter((id) => id !== status.id)
      .sort((a, b) => (status.progress![a]?.match ?? 0) - (status.progress![b]?.match ?? 0) || (a < b ? 1 : -1))[0]
    if (extra) return { type: 'demote', nodeId: extra }
  }
  return null
}
