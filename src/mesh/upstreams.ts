// Upstreams: `localhost:local_port` inside a task reaches a service through
// this agent. exec tasks share the host's network namespace, so the agent
// listens on 127.0.0.1 there; docker tasks live in their group's namespace
// (the pause container), where a child entered with nsenter listens and hands
// the sockets back. Connections are proxied by the mesh's service pools.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

const NETNS_CHILD = fileURLToPath(new URL('./netns-listen.ts', import.meta.url))
const NETNS_TIMEOUT_MS = 10_000

export interface UpstreamRequest {
  task: string
  /** exec: host namespace; docker: the group's namespace. */
  driver: 'docker' | 'exec'
  service: string
  localPort: number
}

export interface UpstreamSetup {
  allocId: string
  upstreams: readonly UpstreamRequest[]
  /** A process in the group's network namespace (the pause container's); needed by docker tasks' upstreams. */
  netnsPid?: number
  /** Records a task event of the allocation. */
  note(task: string, type: string, message: string): void
}

export interface UpstreamStatus {
  allocId: string
  task: string
  service: string
  localPort: number
  namespace: 'host' | 'group'
  state: 'listening' | 'error'
  error?: string
}

export interface UpstreamsOptions {
  /** Hands an accepted connection to the service's pool. */
  proxy(service: string, socket: net.Socket): void
  known(service: string): boolean
  log: { info(msg: string): void; warn(msg: string): void }
}

interface HostListener {
  server: net.Server
  service: string
  allocs: Set<string>
}

export class Upstreams {
  readonly #o: UpstreamsOptions
  /** 127.0.0.1:port in the host namespace, shared by the allocations asking for the same service there. */
  readonly #host = new Map<number, HostListener>()
  /** Listening sockets in allocations' own namespaces. */
  readonly #group = new Map<string, net.Server[]>()
  readonly #status = new Map<string, UpstreamStatus[]>()

  constructor(o: UpstreamsOptions) {
    this.#o = o
  }

  status(): UpstreamStatus[] {
    return [...this.#status.values()].flat()
  }

  /** Opens the allocation's upstream listeners (idempotent: an earlier set is closed first). */
  async attach(s: UpstreamSetup): Promise<void> {
    this.detach(s.allocId)
    const statuses: UpstreamStatus[] = []
    this.#status.set(s.allocId, statuses)
    const report = (u: UpstreamRequest, error?: string) => {
      const namespace = u.driver === 'exec' ? 'host' : 'group'
      statuses.push({ allocId: s.allocId, task: u.task, service: u.service, localPort: u.localPort, namespace, state: error ? 'error' : 'listening', ...(error ? { error } : {}) })
      if (error) {
        s.note(u.task, 'Upstream Failure', error)
        this.#o.log.warn(`allocation ${s.allocId.slice(0, 8)} task ${u.task}: ${error}`)
      }
    }
    for (const u of s.upstreams) {
      if (!this.#o.known(u.service)) {
        const msg = `upstream service ${u.service} unknown: connections to localhost:${u.localPort} are closed until a job defines it`
        s.note(u.task, 'Upstream', msg)
        this.#o.log.warn(`allocation ${s.allocId.slice(0, 8)} task ${u.task}: ${msg}`)
      }
    }
    for (const u of s.upstreams.filter((x) => x.driver === 'exec')) report(u, await this.#hostListen(s.allocId, u))
    const inGroup = dedupe(s.upstreams.filter((x) => x.driver === 'docker'), report)
    if (inGroup.length === 0) return
    if (s.netnsPid === undefined) {
      for (const u of inGroup) report(u, `upstream ${u.service} on localhost:${u.localPort}: the task has no network namespace of its group to listen in`)
      return
    }
    const results = await listenInNamespace(s.netnsPid, inGroup.map((u) => u.localPort)).catch((err: Error) => err)
    if (results instanceof Error) {
      for (const u of inGroup) report(u, `upstream ${u.service} on localhost:${u.localPort}: ${results.message}`)
      return
    }
    const servers: net.Server[] = []
    if (!this.#status.has(s.allocId)) {
      for (const r of results.values()) if (r instanceof net.Server) r.close()
      return // detached while the child ran
    }
    this.#group.set(s.allocId, servers)
    for (const u of inGroup) {
      const r = results.get(u.localPort)
      if (r instanceof net.Server) {
        r.on('connection', (socket: net.Socket) => this.#o.proxy(u.service, socket))
        servers.push(r)
        report(u)
      } else {
        report(u, `upstream ${u.service} on localhost:${u.localPort}: ${r ?? 'no answer from the namespace helper'}`)
      }
    }
  }

  /** Closes the allocation's upstream listeners. */
  detach(allocId: string): void {
    this.#status.delete(allocId)
    for (const server of this.#group.get(allocId) ?? []) server.close()
    this.#group.delete(allocId)
    for (const [port, l] of this.#host) {
      if (!l.allocs.delete(allocId) || l.allocs.size > 0) continue
      l.server.close()
      this.#host.delete(port)
    }
  }

  close(): void {
    for (const id of [...this.#status.keys(), ...this.#group.keys()]) this.detach(id)
  }

  /** Listens on 127.0.0.1:localPort of the host for an exec task; undefined, or why not. */
  async #hostListen(allocId: string, u: UpstreamRequest): Promise<string | undefined> {
    const existing = this.#host.get(u.localPort)
    if (existing) {
      if (existing.service !== u.service) {
        return `upstream ${u.service} on localhost:${u.localPort}: the port already carries upstream ${existing.service} on this host`
      }
      existing.allocs.add(allocId)
      return undefined
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => this.#o.proxy(u.service, socket))
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', resolve)
      server.listen({ port: u.localPort, host: '127.0.0.1', exclusive: true }, () => resolve(null))
    })
    if (error) {
      return `upstream ${u.service} on localhost:${u.localPort}: ${error.code === 'EADDRINUSE' ? '127.0.0.1:' + u.localPort + ' is already in use on this host' : error.message}`
    }
    if (this.#host.has(u.localPort) || !this.#status.has(allocId)) {
      server.close() // raced with another attach, or detached meanwhile
      return this.#status.has(allocId) ? this.#hostListen(allocId, u) : undefined
    }
    this.#host.set(u.localPort, { server, service: u.service, allocs: new Set([allocId]) })
    return undefined
  }
}

/** One listener per local port of the group (tasks asking for the same service share it); a port asked for two services is an error for the second. */
function dedupe(ups: UpstreamRequest[], report: (u: UpstreamRequest, error?: string) => void): UpstreamRequest[] {
  const byPort = new Map<number, UpstreamRequest>()
  for (const u of ups) {
    const first = byPort.get(u.localPort)
    if (!first) byPort.set(u.localPort, u)
    else if (first.service !== u.service) report(u, `upstream ${u.service} on localhost:${u.localPort}: task ${first.task} of the group uses that port for upstream ${first.service}`)
  }
  return [...byPort.values()]
}

/**
 * Runs netns-listen.ts inside the namespace of process `pid` and collects the
 * listening sockets it sends back (or why a port could not be had).
 */
export function listenInNamespace(pid: number, ports: readonly number[]): Promise<Map<number, net.Server | string>> {
  return new Promise((resolve, reject) => {
    const results = new Map<number, net.Server | string>()
    let stderr = ''
    const child = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, process.execPath, NETNS_CHILD, ports.join(',')], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the namespace helper did not answer within ${NETNS_TIMEOUT_MS / 1000}s`))
    }, NETNS_TIMEOUT_MS)
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 2_000) stderr += d.toString() })
    child.on('message', (m: { port: number; error?: string }, handle: unknown) => {
      if (handle instanceof net.Server) results.set(m.port, handle)
      else results.set(m.port, m.error ?? 'no socket received')
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run nsenter: ${err.message}`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (results.size === ports.length) resolve(results)
      else reject(new Error(`the namespace helper exited with ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`))
    })
  })
}
