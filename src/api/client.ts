// A thin client of the agent's HTTP API, used by the CLI and tests.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'

// The CommonJS modules, not ESM imports: the ESM facade of node:http reads every export,
// which loads fetch's implementation (undici), a cost a short-lived CLI feels.
const { Agent, request, STATUS_CODES } = process.getBuiltinModule('node:http')
const { Readable } = process.getBuiltinModule('node:stream')
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
  readonly #url: URL

  constructor(address: string) {
    this.base = normalizeAddress(address)
    this.#url = new URL(this.base)
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.#json<T>('GET', path, undefined, signal)
  }

  /** A GET with the state index it was answered at (for `?index=N&wait=` blocking reads). */
  async getIndexed<T>(path: string, signal?: AbortSignal): Promise<{ body: T; index: number }> {
    const res = await this.#request('GET', path, undefined, signal)
    if (!ok(res)) throw await toError(res)
    return { body: JSON.parse(await text(res.body)) as T, index: Number(res.headers['x-shoal-index'] ?? 0) }
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#json<T>('POST', path, body)
  }

  /** A POST of JSON text as it is (a job file: the agent's errors then point into it). */
  async postText<T>(path: string, json: string): Promise<T> {
    return parsed<T>(await this.#request('POST', path, Buffer.from(json)))
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
    if (!ok(res)) throw await toError(res)
    return Readable.toWeb(res.body) as ReadableStream<Uint8Array>
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return parsed<T>(await this.#request(method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)), signal))
  }

  #request(method: string, path: string, payload: Buffer | undefined, signal?: AbortSignal): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.#url.hostname.replace(/^\[|\]$/g, ''),
        port: this.#url.port || 80,
        method,
        path,
        agent: KEEP_ALIVE,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        ...(signal ? { signal } : {}),
      })
      req.once('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }))
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') return reject(err)
        reject(new ApiError(0, `cannot reach the Shoal agent at ${this.base} (${err.code ?? err.message}); is "shoal agent" running? Set --address or SHOAL_ADDR`))
      })
      req.end(payload)
    })
  }
}

// Keep-alive for commands that follow (blocking reads); idle sockets do not hold the process open.
const KEEP_ALIVE = new Agent({ keepAlive: true })

function ok(res: Answer): boolean {
  return res.status >= 200 && res.status < 300
}

/** A JSON answer's body, or its error. */
async function parsed<T>(res: Answer): Promise<T> {
  if (!ok(res)) throw await toError(res)
  return JSON.parse(await text(res.body)) as T
}

async function text(body: IncomingMessage): Promise<string> {
  body.setEncoding('utf8')
  let all = ''
  for await (const chunk of body) all += chunk as string
  return all
}

async function toError(res: Answer): Promise<ApiError> {
  const raw = await text(res.body)
  try {
    const body = JSON.parse(raw) as { error?: string; field?: string; errors?: ApiProblem[] }
    return new ApiError(res.status, body.error ?? raw, body.field, body.errors ?? [], body)
  } catch {
    return new ApiError(res.status, raw || (STATUS_CODES[res.status] ?? `HTTP ${res.status}`))
  }
}
