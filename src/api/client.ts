// A thin client of the agent's HTTP API, used by the CLI and tests.
import type * as NodeHttp from 'node:http'
import type { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http'

// The CommonJS modules, not ESM imports: the ESM facade of node:http reads every export,
// which loads fetch's implementation (undici), a cost a short-lived CLI feels. node:http
// itself loads with the first request that uses it (postText does not).
const { Readable } = process.getBuiltinModule('node:stream')
let httpModule: typeof NodeHttp | undefined
const http = () => (httpModule ??= process.getBuiltinModule('node:http'))
export interface ApiProblem {
  field: string
  message: string
}

export class ApiError extends Error {
  override name = 'ApiError'
  readonly status: number
  readonly field: string | undefined
  readonly errors: ApiProblem[]
  /** The whole error body, e.g. `modifyIndex` of a CAS conflict. */
  readonly body: Record<string, unknown>
  constructor(status: number, message: string, field?: string, errors: ApiProblem[] = [], body: Record<string, unknown> = {}) {
    super(message)
    this.status = status
    this.field = field
    this.errors = errors
    this.body = body
  }
}

export const DEFAULT_ADDRESS = 'http://127.0.0.1:4680'

export function normalizeAddress(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `http://${address}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new ApiError(0, `--address: "${address}" is not an address like http://127.0.0.1:4680`, 'address')
  }
  if (url.protocol !== 'http:') throw new ApiError(0, `--address: only http:// is supported (got ${url.protocol})`, 'address')
  return url.origin
}

/** An answer: status, headers, and the body still to be read. */
interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: IncomingMessage
}

// node:http rather than fetch: loading fetch (undici) costs a short-lived CLI more start-up than the request itself.
export class ApiClient {
  readonly base: string
  /** Where to connect: the address's host (without IPv6 brackets) and port; `host:port` as a Host header. */
  readonly #host: string
  readonly #port: number
  readonly #authority: string

  constructor(address: string) {
    this.base = normalizeAddress(address)
    const url = new URL(this.base)
    this.#host = url.hostname.replace(/^\[|\]$/g, '')
    this.#port = Number(url.port || 80)
    this.#authority = url.host
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.#json<T>('GET', path, undefined, signal)
  }

  /** A GET with the state index it was answered at (for `?index=N&wait=` blocking reads). */
  async getIndexed<T>(path: string, signal?: AbortSignal): Promise<{ body: T; index: number }> {
    const res = await this.#request('GET', path, undefined, signal)
    if (!ok(res.status)) throw await toError(res)
    return { body: JSON.parse(await text(res.body)) as T, index: Number(res.headers['x-shoal-index'] ?? 0) }
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#json<T>('POST', path, body)
  }

  /**
   * A POST of JSON text as it is (a job file: the agent's errors then point
   * into it), on a connection of its own in plain HTTP/1.1: without loading
   * node:http and building its first request, the request leaves ~4 ms sooner
   * (`job run`'s start-up is on the way to a running container).
   */
  async postText<T>(path: string, json: string): Promise<T> {
    const res = await postOnce(this.#host, this.#port, this.#authority, path, Buffer.from(json)).catch((err: NodeJS.ErrnoException) => {
      throw this.#unreachable(err)
    })
    if (!ok(res.status)) throw errorOf(res.status, res.body)
    return JSON.parse(res.body) as T
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.#json<T>('PUT', path, body)
  }

  delete<T>(path: string): Promise<T> {
    return this.#json<T>('DELETE', path)
  }

  /** A streaming GET (logs): the response body as a web stream. */
  async stream(path: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#request('GET', path, undefined, signal)
    if (!ok(res.status)) throw await toError(res)
    return Readable.toWeb(res.body) as ReadableStream<Uint8Array>
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return parsed<T>(await this.#request(method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)), signal))
  }

  #request(method: string, path: string, payload: Buffer | undefined, signal?: AbortSignal): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http().request({
        host: this.#host,
        port: this.#port,
        method,
        path,
        agent: keepAlive(),
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        ...(signal ? { signal } : {}),
      })
      req.once('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }))
      req.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.name === 'AbortError' ? err : this.#unreachable(err))
      })
      req.end(payload)
    })
  }

  #unreachable(err: NodeJS.ErrnoException): ApiError {
    return new ApiError(0, `cannot reach the Shoal agent at ${this.base} (${err.code ?? err.message}); is "shoal agent" running? Set --address or SHOAL_ADDR`)
  }
}

// Keep-alive for commands that follow (blocking reads); idle sockets do not hold the process open.
let sharedAgent: Agent | undefined
const keepAlive = () => (sharedAgent ??= new (http().Agent)({ keepAlive: true }))

/**
 * One POST on a connection of its own (Connection: close): the status and the
 * body, de-chunked, as soon as the answer is whole. Errors are the socket's
 * (ECONNREFUSED, or ECONNRESET when it closes before a whole answer).
 */
function postOnce(host: string, port: number, authority: string, path: string, payload: Buffer): Promise<{ status: number; body: string }> {
  const { connect } = process.getBuiltinModule('node:net')
  return new Promise((resolve, reject) => {
    const socket = connect(port, host)
    let received = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const answer = parseAnswer(received, false)
      if (!answer) return
      socket.destroy()
      resolve(answer)
    })
    socket.once('error', reject)
    socket.once('close', () => {
      const answer = parseAnswer(received, true)
      if (answer) resolve(answer)
      else reject(Object.assign(new Error('connection closed before a whole answer'), { code: 'ECONNRESET' }))
    })
    // Not end(): a server may take the half-close for the end of the exchange and cut its answer short.
    socket.write(Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${authority}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`),
      payload,
    ]))
  })
}

/** An HTTP/1.1 answer, or undefined while it is not whole (`closed`: the connection has ended, which ends a body of no stated length). */
function parseAnswer(raw: Buffer, closed: boolean): { status: number; body: string } | undefined {
  const head = raw.indexOf('\r\n\r\n')
  if (head < 0) return undefined
  const [statusLine = '', ...lines] = raw.subarray(0, head).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1])
  if (!status) return undefined
  const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim()
  let body = raw.subarray(head + 4)
  if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = []
    for (let at = 0; ;) {
      const eol = body.indexOf('\r\n', at)
      const size = eol < 0 ? NaN : parseInt(body.subarray(at, eol).toString('latin1'), 16)
      if (Number.isNaN(size) || eol + 2 + size > body.length) return undefined
      if (size === 0) break
      parts.push(body.subarray(eol + 2, eol + 2 + size))
      at = eol + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else {
    const length = header('content-length')
    if (length === undefined && !closed) return undefined
    if (length !== undefined) {
      if (body.length < Number(length)) return undefined
      body = body.subarray(0, Number(length))
    }
  }
  return { status, body: body.toString('utf8') }
}

function ok(status: number): boolean {
  return status >= 200 && status < 300
}

/** A JSON answer's body, or its error. */
async function parsed<T>(res: Answer): Promise<T> {
  if (!ok(res.status)) throw await toError(res)
  return JSON.parse(await text(res.body)) as T
}

async function text(body: IncomingMessage): Promise<string> {
  body.setEncoding('utf8')
  let all = ''
  for await (const chunk of body) all += chunk as string
  return all
}

async function toError(res: Answer): Promise<ApiError> {
  return errorOf(res.status, await text(res.body))
}

/** The ApiError of a failed answer: the agent's {error, field, errors}, else its text or the status. */
function errorOf(status: number, raw: string): ApiError {
  try {
    const body = JSON.parse(raw) as { error?: string; field?: string; errors?: ApiProblem[] }
    return new ApiError(status, body.error ?? raw, body.field, body.errors ?? [], body)
  } catch {
    return new ApiError(status, raw || (http().STATUS_CODES[status] ?? `HTTP ${status}`))
  }
}
