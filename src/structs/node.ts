export type NodeStatus = 'initializing' | 'ready' | 'down'

export interface NodeResources {
  /** Total CPU in MHz (cores × clock). */
  cpu: number
  memoryMB: number
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
  eligible: boolean
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
