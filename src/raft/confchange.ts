import type { ConfChange, ConfChangeType, ConfState, NodeId } from './types.ts'

// Conf changes travel inside log entries as bytes. JSON keeps them readable
// in dumps; every node decodes the same bytes the same way, so a corrupt entry
// is ignored identically everywhere (configuration stays a pure function of the log).

const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ['addLearner', 'promote', 'demote', 'remove']
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId }))
}

export function decodeConfChange(data: Uint8Array): ConfChange | Error {
  let v: unknown
  try {
    v = JSON.parse(decoder.decode(data))
  } catch (e) {
    return new Error(`conf change: undecodable: ${(e as Error).message}`)
  }
  if (typeof v !== 'object' || v === null) return new Error('conf change: not an object')
  const o = v as Record<string, unknown>
  if (typeof o.type !== 'string' || !(CONF_CHANGE_TYPES as readonly string[]).includes(o.type)) {
    return new Error('conf change: bad type')
  }
  if (!isNodeId(o.nodeId)) return new Error('conf change: bad nodeId')
  return { type: o.type as ConfChangeType, nodeId: o.nodeId }
}

export function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'string' && x.length > 0 && x.length <= 256
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] }
}

/** Canonical form: sorted, no duplicates, a node is never both voter and learner. */
export function normalizeConf(c: ConfState): ConfState {
  const voters = [...new Set(c.voters)].sort()
  const vs = new Set(voters)
  const learners = [...new Set(c.learners)].filter((l) => !vs.has(l)).sort()
  return { voters, learners }
}

/**
 * Pure application of one change. Tolerant: a change that makes no sense for
 * `c` is a no-op (the leader validates before proposing; followers must never
 * diverge on how they interpret the log).
 */
export function applyConfChange(c: ConfState, cc: ConfChange): ConfState {
  const voters = new Set(c.voters)
  const learners = new Set(c.learners)
  const id = cc.nodeId
  switch (cc.type) {
    case 'addLearner':
      if (!voters.has(id)) learners.add(id)
      break
    case 'promote':
      if (learners.has(id)) { learners.delete(id); voters.add(id) }
      break
    case 'demote':
      if (voters.has(id) && voters.size > 1) { voters.delete(id); learners.add(id) }
      break
    case 'remove':
      if (voters.has(id) && voters.size === 1) break // never remove the last voter
      voters.delete(id)
      learners.delete(id)
      break
  }
  return normalizeConf({ voters: [...voters], learners: [...learners] })
}

/** Why a change would be rejected by the leader, or null if it is acceptable. */
export function checkConfChange(c: ConfState, cc: ConfChange): string | null {
  const isVoter = c.voters.includes(cc.nodeId)
  const isLearner = c.learners.includes(cc.nodeId)
  switch (cc.type) {
    case 'addLearner':
      return isVoter || isLearner ? `${cc.nodeId} is already a member` : null
    case 'promote':
      return isLearner ? null : `${cc.nodeId} is not a learner`
    case 'demote':
      if (!isVoter) return `${cc.nodeId} is not a voter`
      return c.voters.length === 1 ? 'cannot demote the last voter' : null
    case 'remove':
      if (!isVoter && !isLearner) return `${cc.nodeId} is not a member`
      return isVoter && c.voters.length === 1 ? 'cannot remove the last voter' : null
  }
}

export function quorum(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1
}
