// The load-balancing mesh of one agent: for every published service a
// listener on this agent's address at the publish port, proxying to healthy
// instances anywhere in the cluster; and the service pools upstream
// listeners hand their connections to. Follows the catalog as it changes.
import net from 'node:net'
import type { Backend, BalanceMode } from './balancer.ts'
import { desiredListeners, diffListeners, type PublishConflict, type PublishSpec } from './listeners.ts'
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
  /** Healthy instances the listener proxies to now. */
  instances: number
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

  status(): { listeners: ListenerStatus[]; services: Record<string, ServiceCounters & { instances: number }> } {
    const listeners: ListenerStatus[] = []
    const address = this.#o.bindHost
    for (const l of this.#listeners.values()) {
      listeners.push({ ...specView(l.spec), address, state: l.state, ...(l.error ? { error: l.error } : {}), instances: this.pool(l.spec.service).backends.length })
    }
    for (const c of this.#conflicts) {
      listeners.push({ ...specView(c.spec), address, state: 'conflict', error: c.message, instances: this.pool(c.spec.service).backends.length })
    }
    listeners.sort((a, b) => a.port - b.port || a.service.localeCompare(b.service))
    const services: Record<string, ServiceCounters & { instances: number }> = {}
    for (const pool of [...this.#pools.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      services[pool.name] = { ...pool.counters, instances: pool.backends.length }
    }
    return { listeners, services }
  }

  async close(): Promise<void> {
    this.#closed = true
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
      this.pool(service).handle(socket, this.#routes.get(service) ?? DEFAULT_ROUTE)
    })
    l.server = server
    l.state = 'starting'
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (l.server !== server) return
      l.server = null
      l.state = 'error'
      l.error = listenError(err, bindHost, l.spec)
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

function routeOf(spec: PublishSpec): Route {
  return spec.proxyProtocol ? { balance: spec.balance, proxyProtocol: spec.proxyProtocol } : { balance: spec.balance }
}

function specView(spec: PublishSpec): Omit<ListenerStatus, 'address' | 'state' | 'error' | 'instances'> {
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
