// The proxy hot path: one accepted client socket is joined to one backend
// socket, piped both ways (no copies of our own). A connect that fails is
// retried on another instance before the client sees anything.
import net from 'node:net'
import { Balancer, Ejections, type BalanceMode, type Backend } from './balancer.ts'
import { proxyHeader, type ProxyProtocolVersion } from './proxy-protocol.ts'

/** A backend that does not accept within this time is given up for another. */
export const CONNECT_TIMEOUT_MS = 2_000
/** A backend that refused or timed out is skipped this long (unless nothing else is left). */
export const EJECT_MS = 5_000
const LOG_EVERY_MS = 5_000

/** Per-service counters on this agent (what autoscaling reads). */
export interface ServiceCounters {
  /** Connections accepted (tcp mode: one per connection). */
  requests: number
  activeConnections: number
  /** Connections closed without reaching any instance. */
  failures: number
}

/** How one accepted connection is proxied. */
export interface Route {
  balance: BalanceMode
  proxyProtocol?: ProxyProtocolVersion
}

export interface PoolLogger {
  warn(msg: string): void
}

/** A service's instances as this agent proxies to them, with the balancing state and counters. */
export class ServicePool {
  readonly name: string
  readonly counters: ServiceCounters = { requests: 0, activeConnections: 0, failures: 0 }
  /** Healthy instances now; replaced (never mutated) when the catalog changes. */
  backends: readonly Backend[] = []
  /** False while no job defines the service (an upstream to a name that does not exist). */
  known = false
  readonly #balancer = new Balancer()
  readonly #active = new Map<string, number>()
  readonly #ejections = new Ejections(EJECT_MS)
  readonly #clients = new Set<net.Socket>()
  readonly #log: PoolLogger
  #lastLog = 0
  readonly #activeOf = (key: string) => this.#active.get(key) ?? 0

  constructor(name: string, log: PoolLogger) {
    this.name = name
    this.#log = log
  }

  /** Open connections per backend key (least-conn input; shown by the API). */
  activeOf(key: string): number {
    return this.#activeOf(key)
  }

  /**
   * Takes over an accepted client socket: it ends up piped to an instance, or
   * closed. `counted`: the kernel's dispatch rule has counted it already.
   */
  handle(client: net.Socket, route: Route, counted = false): void {
    if (!counted) this.counters.requests++
    this.counters.activeConnections++
    this.#clients.add(client)
    client.setNoDelay(true)
    client.on('error', noop)
    client.once('close', () => {
      this.counters.activeConnections--
      this.#clients.delete(client)
    })
    this.#dial(client, route, null)
  }

  /** Closes every connection this pool proxies (agent shutdown). */
  destroyAll(): void {
    for (const c of this.#clients) c.destroy()
  }

  #dial(client: net.Socket, route: Route, tried: Set<string> | null): void {
    if (client.destroyed) return
    const now = Date.now()
    // Recently failed instances are a last resort, not a reason to fail the client.
    const backend = this.#balancer.pick(this.backends, route.balance, (key) => (tried !== null && tried.has(key)) || this.#ejections.has(key, now), this.#activeOf)
      ?? (this.#ejections.size > 0 ? this.#balancer.pick(this.backends, route.balance, (key) => tried !== null && tried.has(key), this.#activeOf) : undefined)
    if (!backend) {
      this.counters.failures++
      this.#warn(now, !this.known
        ? `upstream service ${this.name} unknown: connection closed`
        : tried === null ? `service ${this.name} has no healthy instance: connection closed`
        : `service ${this.name}: no instance accepted the connection (${tried.size} tried)`)
      client.destroy()
      return
    }
    const upstream = net.connect({ host: backend.address, port: backend.port, allowHalfOpen: true, noDelay: true })
    let connected = false
    const timer = setTimeout(() => upstream.destroy(new Error('connect timed out')), CONNECT_TIMEOUT_MS)
    const onClientGone = () => upstream.destroy()
    client.once('close', onClientGone)
    upstream.once('error', () => {
      if (connected) return
      clearTimeout(timer)
      client.off('close', onClientGone)
      this.#ejections.eject(backend.key, Date.now())
      const next = tried ?? new Set<string>()
      next.add(backend.key)
      this.#dial(client, route, next)
    })
    upstream.once('connect', () => {
      connected = true
      clearTimeout(timer)
      client.off('close', onClientGone)
      this.#join(client, upstream, backend.key, route)
    })
  }

  #join(client: net.Socket, upstream: net.Socket, key: string, route: Route): void {
    this.#active.set(key, this.#activeOf(key) + 1)
    upstream.on('error', noop)
    upstream.once('close', (hadError) => {
      const n = this.#activeOf(key) - 1
      if (n > 0) this.#active.set(key, n)
      else this.#active.delete(key)
      if (hadError) client.destroy()
      else if (!client.destroyed) client.end()
    })
    client.once('close', (hadError) => {
      if (hadError) upstream.destroy()
      else if (!upstream.destroyed) upstream.end()
    })
    if (client.destroyed) {
      upstream.destroy()
      return
    }
    if (route.proxyProtocol) {
      upstream.write(proxyHeader(route.proxyProtocol, client.remoteAddress === undefined ? null : {
        sourceAddress: client.remoteAddress, sourcePort: client.remotePort ?? 0,
        destinationAddress: client.localAddress ?? '', destinationPort: client.localPort ?? 0,
      }))
    }
    client.pipe(upstream)
    upstream.pipe(client)
  }

  #warn(now: number, message: string): void {
    if (now - this.#lastLog < LOG_EVERY_MS) return
    this.#lastLog = now
    this.#log.warn(message)
  }
}

function noop(): void {}
