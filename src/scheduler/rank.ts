// Ranking: bin-pack (fill nodes up before using empty ones, so big jobs still
// fit somewhere), minus a penalty for sharing a node with the same job group.
import type { Node, Resources } from '../structs/index.ts'
import type { UsageTracker } from './usage.ts'

export const JOB_ANTI_AFFINITY_PENALTY = 0.5

export function binPackScore(node: Node, need: Resources, usage: UsageTracker): number {
  const free = usage.free(node)
  const cpuUsed = 1 - (free.cpu - need.cpu) / node.resources.cpu
  const memUsed = 1 - (free.memoryMB - need.memoryMB) / node.resources.memoryMB
  return (cpuUsed + memUsed) / 2
}

export function rankNode(node: Node, jobId: string, group: string, need: Resources, usage: UsageTracker): number {
  const sameGroup = usage.usage(node).jobGroups.get(`${jobId}/${group}`) ?? 0
  return binPackScore(node, need, usage) - JOB_ANTI_AFFINITY_PENALTY * sameGroup
}
