/** A control-plane member: a Raft peer, how to reach it over libp2p and HTTP. */
export interface Member {
  /** libp2p PeerId = node id. */
  id: string
  name: string
  /** Multiaddrs of its libp2p host. */
  addrs: string[]
  /** host:port of its HTTP API. */
  http: string
  createIndex: number
  modifyIndex: number
}
