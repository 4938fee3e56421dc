// The load-balancing mesh of one agent: for every published service a
// listener on this agent's address at the publish port, proxying to healthy
// instances anywhere in the cluster; and the service pools upstream
// listeners hand their connections to. Follows the catalog as it changes.
import net from 'node:net'
import type { Backend, BalanceMode } from './balancer.ts'
import { desiredListeners, diffListeners, type PublishConflict, type PublishSpec } from './listeners.ts'
import type { NatPort, NatState } from './nat-rules.ts'
import { ServicePool, type Route, type ServiceCounters } from './proxy.ts'

/** A listener that could not bind is tried again this often (the port may be freed). */
export const LISTEN_RETRY_MS = 10_000

/** What the mesh reads from the cluster state. */
export interface MeshCatalog {
  /** Publish blocks of the jobs that want to run, oldest job first. */
  published(): PublishSpec[]
  /** Healthy, running instances of a service, anywhere in the cluster. */
  backends(service: string): Backend[]
  /** Whether a job that wants to run defines the service. */
  known(service: string): boolean
}

export interface MeshLogger {
  info(msg: string): void
  warn(msg: string): void
}

export type ListenerState = 'starting' | 'listening' | 'error' | 'conflict'

/** The kernel's rules as the mesh drives them (NatDatapath; a fake in unit tests). */
export interface KernelRules {
  /** Brings the kernel to `want` soon (one transaction at a time). */
  sync(want: NatState): void
  /** The port as the kernel serves it now, if it has a dispatch rule. */
  applied(port: number): NatPort | undefined
  /** The last failed transaction's error, until one succeeds. */
  readonly error: string | null
  close(): Promise<void>
}

/** Who moves a published port's connections: kernel NAT rules, or the proxy in this process. */
export type Datapath = 'kernel' | 'userspace'

export interface ListenerStatus {
  service: string
  jobId: string
  address: string
  port: number
  balance: BalanceMode
  proxyProtocol?: string
  mode: string
  state: ListenerState
  error?: string
  /** Healthy instances the listener proxies to now (for the kernel: those in its rules). */
  instances: number
  datapath: Datapath
  /** Why a port is not on the kernel data path (when the agent has one). */
  datapathReason?: string
}

interface Listener {
  spec: PublishSpec
  server: net.Server | null
  state: ListenerState
  error?: string
  retry?: NodeJS.Timeout
}

export interface MeshOptions {
  catalog: MeshCatalog
  /** This agent's address: published ports listen here. */
  bindHost: string
  log: MeshLogger
}

export class Mesh {
  readonly #o: MeshOptions
  readonly #listeners = new Map<number, Listener>()
  #conflicts: PublishConflict[] = []
  readonly #pools = new Map<string, ServicePool>()
  /** Per service: how connections are routed (its publish settings, else round-robin). */
  readonly #routes = new Map<string, Route>()
  #closed = false
  #kernel: KernelRules | null = null

  constructor(o: MeshOptions) {
    this.#o = o
  }

  /** Re-reads the catalog: listeners opened/closed/changed, instances swapped in every pool. */
  refresh(): void {
    if (this.#closed) return
    const { catalog, log } = this.#o
    const { listeners: desired, conflicts } = desiredListeners(catalog.published())
    for (const c of conflicts) if (!this.#conflicts.some((x) => x.message === c.message)) log.warn(c.message)
    this.#conflicts = conflicts
    this.#routes.clear()
    for (const spec of desired.values()) {
      if (!this.#routes.has(spec.service)) this.#routes.set(spec.service, routeOf(spec))
    }
    const current = new Map([...this.#listeners].map(([port, l]) => [port, l.spec]))
    const diff = diffListeners(current, desired)
    for (const port of diff.close) this.#close(port)
    for (const spec of diff.update) {
      const l = this.#listeners.get(spec.port)!
      log.info(`mesh: port ${spec.port} now serves service ${spec.service} (job ${spec.jobId})`)
      l.spec = spec
    }
    for (const spec of diff.open) this.#open(spec)
    for (const l of this.#listeners.values()) this.pool(l.spec.service)
    for (const pool of this.#pools.values()) {
      pool.backends = catalog.backends(pool.name)
      pool.known = catalog.known(pool.name)
    }
    this.#syncKernel()
  }

  /** From now on published ports that it can serve go through kernel rules. */
  useKernel(kernel: KernelRules): void {
    this.#kernel = kernel
    this.#syncKernel()
  }

  /** The ports the kernel should serve now: listening, with settings it can honour. */
  #syncKernel(): void {
    const kernel = this.#kernel
    if (!kernel || this.#closed) return
    const want = new Map<number, NatPort>()
    for (const [port, l] of this.#listeners) {
      if (l.state !== 'listening' || kernelUnfit(l.spec)) continue
      const backends = this.pool(l.spec.service).backends
      // An instance the kernel cannot dial (not IPv4): the whole port stays with the proxy (empty chain).
      const fit = backends.every((b) => net.isIPv4(b.address))
      want.set(port, { port, service: l.spec.service, backends: fit ? backends.map((b) => ({ address: b.address, port: b.port })) : [] })
    }
    kernel.sync(want)
  }

  /** Where a listener's connections go, and why not the kernel. */
  #datapathOf(l: Listener): { datapath: Datapath; datapathReason?: string; instances?: number } {
    const kernel = this.#kernel
    if (!kernel) return { datapath: 'userspace' }
    const unfit = kernelUnfit(l.spec)
    if (unfit) return { datapath: 'userspace', datapathReason: unfit }
    const applied = kernel.applied(l.spec.port)
    if (!applied) return { datapath: 'userspace', datapathReason: kernel.error ?? (l.state === 'listening' ? 'kernel rules not applied yet' : 'the port is not bound') }
    const backends = this.pool(l.spec.service).backends
    if (applied.backends.length === 0 && backends.length > 0) return { datapath: 'userspace', datapathReason: 'an instance address is not IPv4', instances: backends.length }
    return { datapath: 'kernel', instances: applied.backends.length }
  }

  /** The pool of a service (created on first use, kept for its counters). */
  pool(service: string): ServicePool {
    let pool = this.#pools.get(service)
    if (!pool) {
      pool = new ServicePool(service, this.#o.log)
      pool.backends = this.#o.catalog.backends(service)
      pool.known = this.#o.catalog.known(service)
      this.#pools.set(service, pool)
    }
    return pool
  }

  /** Proxies a connection accepted elsewhere (an upstream listener) to the service. */
  proxy(service: string, socket: net.Socket): void {
    this.pool(service).handle(socket, this.#routes.get(service) ?? DEFAULT_ROUTE)
  }

  /** `kernelRequests`: connections the kernel's rules counted per service, added to the proxy's. */
  status(kernelRequests?: ReadonlyMap<string, number>): { listeners: ListenerStatus[]; services: Record<string, ServiceCounters & { instances: number }> } {
    const listeners: ListenerStatus[] = []
    const address = this.#o.bindHost
    for (const l of this.#listeners.values()) {
      const dp = this.#datapathOf(l)
      listeners.push({
        ...specView(l.spec), address, state: l.state, ...(l.error ? { error: l.error } : {}),
        instances: dp.instances ?? this.pool(l.spec.service).backends.length, datapath: dp.datapath, ...(dp.datapathReason ? { datapathReason: dp.datapathReason } : {}),
      })
    }
    for (const c of this.#conflicts) {
      listeners.push({ ...specView(c.spec), address, state: 'conflict', error: c.message, instances: this.pool(c.spec.service).backends.length, datapath: 'userspace' })
    }
    listeners.sort((a, b) => a.port - b.port || a.service.localeCompare(b.service))
    const services: Record<string, ServiceCounters & { instances: number }> = {}
    for (const pool of [...this.#pools.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const requests = pool.counters.requests + (kernelRequests?.get(pool.name) ?? 0)
      services[pool.name] = { ...pool.counters, requests, instances: pool.backends.length }
    }
    return { listeners, services }
  }

  async close(): Promise<void> {
    this.#closed = true
    // Rules first: until the listeners close, the proxy answers what the rules no longer take.
    await this.#kernel?.close()
    for (const port of [...this.#listeners.keys()]) this.#close(port)
    for (const pool of this.#pools.values()) pool.destroyAll()
  }

  #open(spec: PublishSpec): void {
    const l: Listener = { spec, server: null, state: 'starting' }
    this.#listeners.set(spec.port, l)
    this.#listen(l)
  }

  #listen(l: Listener): void {
    const { bindHost, log } = this.#o
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
      const service = l.spec.service
      // With a dispatch rule in the kernel, its counter has counted this connection already.
      this.pool(service).handle(socket, this.#routes.get(service) ?? DEFAULT_ROUTE, this.#kernel?.applied(l.spec.port) !== undefined)
    })
    l.server = server
    l.state = 'starting'
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (l.server !== server) return
      l.server = null
      l.state = 'error'
      l.error = listenError(err, bindHost, l.spec)
      // No rules for a port this agent does not hold: whoever does keeps its connections.
      this.#syncKernel()
      log.warn(`mesh: ${l.error}; retrying every ${LISTEN_RETRY_MS / 1000}s`)
      server.close()
      l.retry = setTimeout(() => {
        if (this.#listeners.get(l.spec.port) === l && !this.#closed) this.#listen(l)
      }, LISTEN_RETRY_MS)
    })
    server.listen({ port: l.spec.port, host: bindHost, exclusive: true }, () => {
      if (l.server !== server) return
      const was = l.error
      l.state = 'listening'
      delete l.error
      log.info(`mesh: service ${l.spec.service} published on ${bindHost}:${l.spec.port}${was ? ' (port free again)' : ''}`)
      this.#syncKernel()
    })
  }

  #close(port: number): void {
    const l = this.#listeners.get(port)
    if (!l) return
    this.#listeners.delete(port)
    clearTimeout(l.retry)
    if (l.server) {
      l.server.close()
      this.#o.log.info(`mesh: stopped publishing service ${l.spec.service} on port ${port}`)
    }
    l.server = null
  }
}

const DEFAULT_ROUTE: Route = { balance: 'round-robin' }

/** Why the kernel cannot honour a publish block's settings (it spreads connections in turn and adds nothing to them). */
function kernelUnfit(spec: PublishSpec): string | null {
  if (spec.proxyProtocol) return 'proxy_protocol needs the user-space proxy (it writes a header)'
  if (spec.balance !== 'round-robin') return `balance "${spec.balance}" needs the user-space proxy (the kernel does not see open connections)`
  return null
}

function routeOf(spec: PublishSpec): Route {
  return spec.proxyProtocol ? { balance: spec.balance, proxyProtocol: spec.proxyProtocol } : { balance: spec.balance }
}

function specView(spec: PublishSpec): Omit<ListenerStatus, 'address' | 'state' | 'error' | 'instances' | 'datapath' | 'datapathReason'> {
  return {
    service: spec.service, jobId: spec.jobId, port: spec.port, balance: spec.balance, mode: spec.mode,
    ...(spec.proxyProtocol ? { proxyProtocol: spec.proxyProtocol } : {}),
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, spec: PublishSpec): string {
  const where = `${host}:${spec.port}`
  const what = `publish port ${spec.port} of service "${spec.service}" (job ${spec.jobId})`
  if (err.code === 'EADDRINUSE') return `${what}: ${where} is already in use on this host`
  if (err.code === 'EACCES') return `${what}: not permitted to listen on ${where}`
  if (err.code === 'EADDRNOTAVAIL') return `${what}: ${host} is not an address of this host`
  return `${what}: cannot listen on ${where}: ${err.message}`
}
