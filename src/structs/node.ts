export type NodeStatus = 'initializing' | 'ready' | 'down'

export interface NodeResources {
  /** Total CPU in MHz (cores × clock). */
  cpu: number
  memoryMB: number
}

/**
 * A drain in progress (`node drain --enable`): the drainer moves the node's
 * allocations elsewhere, honouring each group's migrate block, until none is
 * left or the deadline passes.
 */
export interface DrainStrategy {
  startedAt: number
  /** When whatever is left is stopped at once (ms); absent: no deadline. */
  deadlineAt?: number
  /** System jobs' allocations stay on the node (else they are stopped last). */
  ignoreSystem: boolean
}

/** How the node's last drain ended, for `node status` and `node drain` monitors. */
export interface LastDrain {
  startedAt: number
  endedAt: number
  status: 'complete' | 'canceled'
}

export interface Node {
  id: string
  name: string
  /** Address allocations publish their ports on (the agent's bind host). */
  address: string
  /** The agent's HTTP API, host:port. */
  http: string
  status: NodeStatus
  statusDescription: string
  /** Whether the scheduler may place new allocations here (`node eligibility`, drains). */
  eligible: boolean
  /** Present while the node is being drained. Absent in entries written before drains existed. */
  drain?: DrainStrategy
  lastDrain?: LastDrain
  drivers: string[]
  resources: NodeResources
  /** Fingerprinted attributes (os.name, cpu.arch, kernel.version, ...). */
  attributes: Record<string, string>
  meta: Record<string, string>
  /** Dynamic host port range for allocations, inclusive. */
  portRange: { min: number; max: number }
  createIndex: number
  modifyIndex: number
}
