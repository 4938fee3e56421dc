// A small client of the Docker Engine API over its unix socket: exactly the calls the
// docker driver makes, on node:http. The general-purpose client the agent used before
// (with docker-modem, ssh2, @grpc/grpc-js, protobufjs, ...) cost it ~10-13 MiB of RSS.
//
// Paths are unversioned, as that client sent them: the engine answers at its own API
// version. Any answer outside 2xx rejects with a DockerEngineError that carries the
// HTTP status and the engine's own message; a socket that cannot be reached rejects
// with node's error (code ENOENT, ECONNREFUSED, ...).
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { addAbortSignal, type Readable } from 'node:stream'

// The CommonJS module, not an ESM import: the ESM facade of node:http reads every export,
// which loads fetch's implementation (undici).
const { Agent, request, STATUS_CODES } = process.getBuiltinModule('node:http')

// ---- the subset of the engine's types that the driver reads or sends ----

export interface EngineVersion {
  Version: string
  ApiVersion: string
  Os: string
  Arch: string
}

export interface ImageInspect {
  Id: string
  Config?: {
    Entrypoint?: string[] | string | null
    WorkingDir?: string
    Env?: string[] | null
  } | null
}

export interface PortBinding {
  HostIp: string
  HostPort: string
}

export interface HostConfig {
  NetworkMode?: string
  PortBindings?: Record<string, PortBinding[]>
  Binds?: string[]
  CpuShares?: number
  CpuPeriod?: number
  CpuQuota?: number
  Memory?: number
  MemorySwap?: number
  MemoryReservation?: number
  Init?: boolean
  LogConfig?: { Type: string; Config: Record<string, string> }
}

/** The body of POST /containers/create, plus the container's name (sent as a query parameter). */
export interface ContainerCreateOptions {
  name: string
  Image: string
  Cmd?: string[]
  Env?: string[]
  Labels?: Record<string, string>
  ExposedPorts?: Record<string, object>
  HostConfig?: HostConfig
}

export interface ContainerState {
  Status: string
  Running: boolean
  Dead: boolean
  OOMKilled: boolean
  Pid: number
  ExitCode: number
  Error: string
  StartedAt: string
  FinishedAt: string
}

export interface ContainerInspect {
  Id: string
  State: ContainerState
  HostConfig: { Memory?: number }
}

export interface ContainerSummary {
  Id: string
  Labels: Record<string, string>
}

export interface ContainerListOptions {
  all?: boolean
  filters?: Record<string, string[]>
}

export interface LogsOptions {
  stdout: boolean
  stderr: boolean
  timestamps?: boolean
  tail?: number
  /** Seconds since the epoch, with up to nine decimals. */
  since?: string
}

export interface ExecCreateOptions {
  Cmd: string[]
  AttachStdin: boolean
  AttachStdout: boolean
  AttachStderr: boolean
  Tty: boolean
}

export interface ExecInspect {
  Running: boolean
  ExitCode: number | null
  Pid: number
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] }
  system_cpu_usage?: number
  online_cpus?: number
}

export interface ContainerStats {
  read: string
  cpu_stats?: CpuStats
  precpu_stats?: CpuStats
  memory_stats?: { usage?: number; stats?: Record<string, number> }
}

/** X-Docker-Container-Path-Stat: `mode` holds Go's os.FileMode bits. */
export interface PathStat {
  name: string
  size: number
  mode: number
  mtime: string
  linkTarget: string
}

// ---- errors ----

/** The engine answered outside 2xx (or broke the protocol): status and the engine's own message. */
export class DockerEngineError extends Error {
  override name = 'DockerEngineError'
  /** The HTTP status; undefined for an error reported inside a 200 stream (a pull's). */
  readonly statusCode: number | undefined
  constructor(message: string, statusCode?: number) {
    super(message)
    this.statusCode = statusCode
  }
}

/** The error of an answer outside 2xx: the body's `message` (the engine's JSON), else its text. */
export function errorFromResponse(status: number, body: Buffer): DockerEngineError {
  const text = body.toString().trim()
  let message = ''
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as { message?: unknown }
      if (typeof json.message === 'string') message = json.message.trim()
    } catch {
      // not JSON after all: the text itself
    }
  }
  if (message === '') message = text
  if (message === '') message = `engine answered HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trim()
  return new DockerEngineError(message, status)
}

// ---- pull progress ----

/**
 * The progress stream of POST /images/create: one JSON object per line, status 200 even
 * when the pull fails — a failure is a line with `error` / `errorDetail`. Feed it chunks;
 * `error` holds the first failure's message.
 */
export class PullProgress {
  error: string | undefined
  private pending = ''

  push(chunk: Buffer | string): void {
    const lines = (this.pending + String(chunk)).split('\n')
    this.pending = lines.pop() ?? ''
    for (const line of lines) this.line(line)
  }

  end(): void {
    this.line(this.pending)
    this.pending = ''
  }

  private line(line: string): void {
    if (this.error !== undefined || !line.trim()) return
    let event: { error?: unknown; errorDetail?: { message?: unknown } }
    try {
      event = JSON.parse(line) as typeof event
    } catch {
      return
    }
    if (!event || typeof event !== 'object') return
    if (event.error || event.errorDetail) {
      const detail = event.errorDetail?.message
      this.error = typeof detail === 'string' && detail ? detail : typeof event.error === 'string' && event.error ? event.error : 'pull failed'
    }
  }
}

/**
 * "repo:tag" → fromImage and tag for POST /images/create (the docker CLI splits them so too). A
 * reference without a tag pulls ":latest" (the engine would pull every tag of the repository).
 */
export function splitImageReference(image: string): { fromImage: string; tag: string } {
  const at = image.indexOf('@')
  const sep = at >= 0 ? at : image.lastIndexOf(':')
  // A colon followed by a '/' belongs to a registry's port, not to a tag.
  if (sep >= 0 && !image.slice(sep + 1).includes('/')) return { fromImage: image.slice(0, sep), tag: image.slice(sep + 1) }
  return { fromImage: image, tag: 'latest' }
}

/** The decoded X-Docker-Container-Path-Stat header (base64 JSON); undefined when absent or unreadable. */
export function decodePathStat(header: string | undefined): PathStat | undefined {
  if (!header) return undefined
  try {
    const parsed = JSON.parse(Buffer.from(header, 'base64').toString()) as Partial<PathStat>
    return {
      name: String(parsed.name ?? ''),
      size: Number(parsed.size ?? 0),
      mode: Number(parsed.mode ?? 0),
      mtime: String(parsed.mtime ?? ''),
      linkTarget: String(parsed.linkTarget ?? ''),
    }
  } catch {
    return undefined
  }
}

type Query = Record<string, string | number | boolean | undefined>

export function queryString(query: Query | undefined): string {
  if (!query) return ''
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v))
  const s = params.toString()
  return s ? `?${s}` : ''
}

// ---- the client ----

interface Call {
  query?: Query
  body?: unknown
  signal?: AbortSignal | undefined
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  res: IncomingMessage
}

const id = (s: string) => encodeURIComponent(s)

export interface DockerEngineOptions {
  /** Default /var/run/docker.sock. */
  socketPath?: string
}

export class DockerEngine {
  readonly socketPath: string
  /** One keep-alive pool for the socket (as node's global agent: lifo, idle sockets closed after 5 s). */
  private readonly agent: HttpAgent

  constructor(options: DockerEngineOptions = {}) {
    this.socketPath = options.socketPath ?? '/var/run/docker.sock'
    this.agent = new Agent({ keepAlive: true, scheduling: 'lifo', timeout: 5000 })
  }

  /** Closes the pooled connections (requests in flight carry on). */
  close(): void {
    this.agent.destroy()
  }

  version(signal?: AbortSignal): Promise<EngineVersion> {
    return this.json('GET', '/version', { signal })
  }

  inspectImage(image: string): Promise<ImageInspect> {
    return this.json('GET', `/images/${encodeURI(image)}/json`)
  }

  /**
   * Pulls `image` and resolves when the engine has it. The engine reports most failures
   * inside its 200 progress stream: the first such line rejects (DockerEngineError
   * without a status). `signal` aborts the pull.
   */
  async pullImage(image: string, signal?: AbortSignal): Promise<void> {
    const { res } = await this.call('POST', '/images/create', { query: splitImageReference(image), signal })
    const progress = new PullProgress()
    try {
      for await (const chunk of res) {
        progress.push(chunk as Buffer)
        if (progress.error !== undefined) break
      }
      progress.end()
    } finally {
      res.destroy()
    }
    if (progress.error !== undefined) throw new DockerEngineError(progress.error)
  }

  /** Creates the container `options.name`; resolves with its id. */
  async createContainer(options: ContainerCreateOptions): Promise<string> {
    const { name, ...config } = options
    const created = await this.json<{ Id: string }>('POST', '/containers/create', { query: { name }, body: config })
    return created.Id
  }

  async startContainer(container: string): Promise<void> {
    await this.empty('POST', `/containers/${id(container)}/start`)
  }

  inspectContainer(container: string): Promise<ContainerInspect> {
    return this.json('GET', `/containers/${id(container)}/json`)
  }

  /** Stops with SIGTERM, then SIGKILL after `t` seconds. 304: already stopped. */
  async stopContainer(container: string, t: number): Promise<void> {
    await this.empty('POST', `/containers/${id(container)}/stop`, { query: { t } })
  }

  async removeContainer(container: string, options: { force?: boolean; v?: boolean } = {}): Promise<void> {
    await this.empty('DELETE', `/containers/${id(container)}`, { query: { force: options.force, v: options.v } })
  }

  /** Blocks until the condition holds ('not-running': resolves at once for a stopped container). */
  waitContainer(container: string, condition: 'not-running' | 'next-exit' | 'removed'): Promise<{ StatusCode: number }> {
    return this.json('POST', `/containers/${id(container)}/wait`, { query: { condition } })
  }

  listContainers(options: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    const query: Query = { all: options.all }
    if (options.filters) query.filters = JSON.stringify(options.filters)
    return this.json('GET', '/containers/json', { query })
  }

  /** The log so far, multiplexed (see docker-logs.ts) unless the container has a TTY. */
  async containerLogs(container: string, options: LogsOptions): Promise<Buffer> {
    const { res } = await this.call('GET', `/containers/${id(container)}/logs`, { query: { ...options, follow: false } })
    return readAll(res)
  }

  /** The log, then what the container writes, until the stream is destroyed or the container ends. */
  async followContainerLogs(container: string, options: LogsOptions): Promise<Readable> {
    const { res } = await this.call('GET', `/containers/${id(container)}/logs`, { query: { ...options, follow: true } })
    return res
  }

  /** Creates an exec instance; resolves with its id. */
  async createExec(container: string, options: ExecCreateOptions): Promise<string> {
    const created = await this.json<{ Id: string }>('POST', `/containers/${id(container)}/exec`, { body: options })
    return created.Id
  }

  /**
   * Starts an exec and hijacks its connection: the engine answers 101 and the socket
   * becomes the process's stdin (write; end() closes it) and its output (multiplexed
   * frames unless `tty`).
   */
  startExec(exec: string, options: { tty: boolean }): Promise<Socket> {
    const body = JSON.stringify({ Detach: false, Tty: options.tty })
    return new Promise<Socket>((resolve, reject) => {
      const req = request({
        agent: this.agent,
        socketPath: this.socketPath,
        method: 'POST',
        path: `/exec/${id(exec)}/start`,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Connection: 'Upgrade',
          Upgrade: 'tcp',
        },
      })
      req.once('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
        // The pool's idle timeout must not follow the socket into its new life.
        socket.setTimeout(0)
        if (head.length > 0) socket.unshift(head)
        resolve(socket)
      })
      req.once('response', (res: IncomingMessage) => {
        readAll(res).then((buf) => {
          const status = res.statusCode ?? 0
          reject(status >= 200 && status < 300
            ? new DockerEngineError(`engine answered ${status} instead of upgrading the exec's connection`, status)
            : errorFromResponse(status, buf))
        }, reject)
      })
      req.once('error', reject)
      req.end(body)
    })
  }

  inspectExec(exec: string): Promise<ExecInspect> {
    return this.json('GET', `/exec/${id(exec)}/json`)
  }

  async resizeExec(exec: string, rows: number, cols: number): Promise<void> {
    await this.empty('POST', `/exec/${id(exec)}/resize`, { query: { h: rows, w: cols } })
  }

  /** One sample (stream=false: the engine compares two readings about a second apart). */
  containerStats(container: string): Promise<ContainerStats> {
    return this.json('GET', `/containers/${id(container)}/stats`, { query: { stream: false } })
  }

  /**
   * stat of a path inside a container, also before it starts (HEAD .../archive). 404 when
   * absent; undefined when the engine sends no (readable) stat header.
   */
  async statPath(container: string, path: string): Promise<PathStat | undefined> {
    const { headers, res } = await this.call('HEAD', `/containers/${id(container)}/archive`, { query: { path } })
    res.resume()
    const header = headers['x-docker-container-path-stat']
    return decodePathStat(Array.isArray(header) ? header[0] : header)
  }

  // ---- transport ----

  private async json<T>(method: string, path: string, call: Call = {}): Promise<T> {
    const { res } = await this.call(method, path, call)
    const buf = await readAll(res)
    try {
      return JSON.parse(buf.toString()) as T
    } catch {
      throw new DockerEngineError(`${method} ${path}: the engine's answer is not JSON: ${buf.toString().slice(0, 200)}`, res.statusCode)
    }
  }

  private async empty(method: string, path: string, call: Call = {}): Promise<void> {
    const { res } = await this.call(method, path, call)
    await readAll(res)
  }

  /** Sends one request; resolves with a 2xx answer whose body is still to be read, rejects otherwise. */
  private call(method: string, path: string, call: Call): Promise<Answer> {
    const body = call.body === undefined ? undefined : JSON.stringify(call.body)
    const signal = call.signal
    return new Promise<Answer>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason)
        return
      }
      const req = request({
        agent: this.agent,
        socketPath: this.socketPath,
        method,
        path: path + queryString(call.query),
        headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        ...(signal ? { signal } : {}),
      })
      req.once('response', (res: IncomingMessage) => {
        // An abort also ends the reading of the body.
        if (signal) addAbortSignal(signal, res)
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) {
          resolve({ status, headers: res.headers, res })
          return
        }
        readAll(res).then((buf) => reject(errorFromResponse(status, buf)), reject)
      })
      req.once('error', reject)
      req.end(body)
    })
  }
}

async function readAll(res: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
