// Services: what a job declares (ServiceSpec, Upstream) and what the catalog
// derives from the state (ServiceInstance). The catalog is never written on its
// own: it follows from jobs and allocations.
import type { TaskCheck } from './job.ts'

export type BalanceMode = 'round-robin' | 'least-conn'
export const BALANCE_MODES: readonly BalanceMode[] = ['round-robin', 'least-conn']

export type ProxyProtocolVersion = 'v1' | 'v2'
export const PROXY_PROTOCOL_VERSIONS: readonly ProxyProtocolVersion[] = ['v1', 'v2']

export type PublishMode = 'tcp' | 'http'
export const PUBLISH_MODES: readonly PublishMode[] = ['tcp', 'http']

/** The service is reachable on `port` of every agent, proxied to its healthy instances (the mesh). */
export interface ServicePublish {
  port: number
  balance: BalanceMode
  /** PROXY protocol header sent to the instances; absent: off. */
  proxyProtocol?: ProxyProtocolVersion
  mode: PublishMode
}

/** A service block, group or task level; stored on the group (task-level ones name their task). */
export interface ServiceSpec {
  /** DNS-label safe, unique within the job. */
  name: string
  /** Label of a group port: instances are reachable on its host address and port. */
  port: string
  tags: string[]
  /** Checks deciding whether an instance is passing; absent: passing while its task(s) run. */
  checks?: TaskCheck[]
  publish?: ServicePublish
  /** Set for a service declared in a task block: command checks run in it, its state decides health. */
  task?: string
}

/** A task reaches `service` on 127.0.0.1:`localPort` through its agent's proxy. */
export interface Upstream {
  service: string
  localPort: number
}

export type ServiceStatus = 'passing' | 'critical' | 'unknown'

/** The outcome of a service's checks in one allocation, reported by its client. */
export interface ServiceHealth {
  status: ServiceStatus
  /** What the last probe that changed the status saw. */
  output?: string
}

/** One allocation's registration of a service, derived from the alloc and its job version. */
export interface ServiceInstance {
  service: string
  allocId: string
  jobId: string
  group: string
  task?: string
  nodeId: string
  nodeName: string
  /** The allocated port's host address (the node's advertised address). */
  address: string
  /** Host port. */
  port: number
  tags: string[]
  healthy: boolean
  status: ServiceStatus
}

/** A service in the catalog listing. */
export interface ServiceSummary {
  name: string
  /** Union of the tags its declarations carry. */
  tags: string[]
  /** Jobs declaring it. */
  jobs: string[]
  healthy: number
  total: number
  /** Catalog index of the service's last change. */
  index: number
}

/** DNS-label safe: lower-case letters, digits and "-", not at either end, at most 63 characters. */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
