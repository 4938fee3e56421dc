// Randomized churn: crashes (including in the middle of handling a Ready),
// restarts, partitions, lossy/duplicating/reordering links, proposals, reads,
// leadership transfers, snapshots and (optionally) membership changes. The
// simulator checks the safety invariants on every step; at the end the
// cluster is healed and must converge with every acknowledged write.

import type { ConfChange, NodeId } from '../../../src/raft/index.ts'
import { Sim, ids } from './sim.ts'

export interface ChurnOptions {
  seed: number
  steps: number
  nodes?: number
  /** Add spare nodes and random single-step membership changes. */
  membership?: boolean
}

export interface ChurnReport {
  acked: number
  reads: number
  settleSteps: number
  leaders: number
}

export function runChurn(o: ChurnOptions): ChurnReport {
  const seed = o.seed
  // Derive the scenario's shape from the seed too.
  const shape = new Sim({ seed: seed * 7919 + 1, voters: ['x'] }).rng
  const n = o.nodes ?? (shape() < 0.5 ? 3 : 5)
  const voters = ids(n)
  const spares = o.membership ? ['s1', 's2', 's3'] : []
  const cautious = shape() < 0.75 // PreVote + CheckQuorum on most runs, plain Raft on the rest
  const sim = new Sim({
    seed,
    voters,
    spares,
    electionTick: 10,
    heartbeatTick: 1 + Math.floor(shape() * 2),
    preVote: cautious,
    checkQuorum: cautious,
    maxInflight: shape() < 0.3 ? 2 : 64,
    // One entry per AppendEntries makes followers ack old-term entries on
    // their own, which is what the Figure 8 commit rule must cope with.
    maxSizePerMsg: shape() < 0.4 ? 1 : 1 << 20,
    stepsPerTick: 2,
    compactEvery: [0, 4, 15][Math.floor(shape() * 3)]!,
    crashInReady: shape() < 0.3 ? 0.002 : 0,
    net: {
      drop: shape() * 0.1,
      duplicate: shape() * 0.05,
      minDelay: 1,
      maxDelay: 1 + Math.floor(shape() * 4),
    },
  })
  const all = [...voters, ...spares]
  const removed = new Set<NodeId>()
  const pick = <T>(xs: readonly T[]): T | undefined => xs.length === 0 ? undefined : xs[Math.floor(sim.rng() * xs.length)]
  let leaders = 0
  let lastLeader: NodeId | undefined

  for (let i = 0; i < o.steps; i++) {
    sim.step()
    const r = sim.rng()
    const down = all.filter((id) => !sim.node(id).up)
    if (r < 0.25) {
      sim.propose()
    } else if (r < 0.29) {
      sim.read()
    } else if (r < 0.293) {
      // Figure 8 pattern: a leader that just appended entries dies before
      // they reach a majority; it (or its log) comes back later.
      const l = sim.leader()
      if (l && down.length < Math.ceil(n / 2)) {
        sim.propose(l.id)
        sim.propose(l.id)
        sim.step()
        sim.crash(l.id)
      }
    } else if (r < 0.297) {
      // Keep at most half the cluster down at once, so progress is possible
      // most of the time (a majority down is covered by the partitions).
      if (down.length < Math.ceil(n / 2)) {
        const victim = pick(all.filter((id) => sim.node(id).up))
        if (victim) sim.crash(victim)
      }
    } else if (r < 0.317) {
      const back = pick(down)
      if (back) sim.restart(back)
    } else if (r < 0.325) {
      const a: NodeId[] = []
      const b: NodeId[] = []
      for (const id of all) (sim.rng() < 0.5 ? a : b).push(id)
      sim.partition(a, b)
    } else if (r < 0.34) {
      sim.heal()
    } else if (r < 0.343) {
      const l = sim.leader()
      const to = pick(l ? l.core!.confState().voters : [])
      if (l && to) l.core!.transferLeadership(to)
    } else if (o.membership && r < 0.36) {
      const cc = randomConfChange(sim, removed, spares, pick)
      if (cc) {
        const res = sim.confChange(cc)
        if (res?.ok && cc.type === 'remove') removed.add(cc.nodeId)
      }
    }
    const l = sim.leader()
    if (l && l.id !== lastLeader) { leaders++; lastLeader = l.id }
  }
  const settleSteps = sim.settle(3000)
  return { acked: sim.acked.size, reads: sim.readsServed, settleSteps, leaders }
}

function randomConfChange(
  sim: Sim, removed: Set<NodeId>, spares: NodeId[],
  pick: <T>(xs: readonly T[]) => T | undefined,
): ConfChange | undefined {
  const l = sim.leader()
  if (!l) return undefined
  const c = l.core!.confState()
  const members = new Set([...c.voters, ...c.learners])
  const choices: ConfChange[] = []
  for (const s of spares) if (!members.has(s) && !removed.has(s)) choices.push({ type: 'addLearner', nodeId: s })
  for (const x of c.learners) choices.push({ type: 'promote', nodeId: x }, { type: 'remove', nodeId: x })
  if (c.voters.length > 3) for (const v of c.voters) choices.push({ type: 'demote', nodeId: v }, { type: 'remove', nodeId: v })
  return pick(choices)
}
