// Small HTTP plumbing: routes with :params, JSON bodies and JSON errors.
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface FieldProblem {
  field: string
  message: string
}

/** An error the API answers with: `{error, field?, errors?}` and a status code. */
export class HttpError extends Error {
  override name = 'HttpError'
  readonly status: number
  readonly field: string | undefined
  readonly errors: FieldProblem[] | undefined
  /** More members of the error body, e.g. the current index of a CAS conflict. */
  readonly extra: Record<string, unknown>
  constructor(status: number, message: string, field?: string, errors?: FieldProblem[], extra: Record<string, unknown> = {}) {
    super(message)
    this.status = status
    this.field = field
    this.errors = errors
    this.extra = extra
  }
}

export interface Request {
  raw: IncomingMessage
  res: ServerResponse
  params: Record<string, string>
  query: URLSearchParams
  body(): Promise<unknown>
  /** The body as text, for a handler that parses it itself. */
  text(): Promise<string>
}

export type Handler = (req: Request) => Promise<unknown>

export interface RouteOptions {
  /**
   * The index a blocking query (`?index=N`) on this route waits to pass, and
   * the X-Shoal-Index it answers with; default: the state's applied index.
   */
  index?: (req: Request) => number
  /** `?index` means something else here (the event stream's resume point): never block. */
  noBlocking?: boolean
}

interface Route {
  method: string
  parts: string[]
  handler: Handler
  options: RouteOptions
}

const MAX_BODY_BYTES = 4 * 2 ** 20

export class Router {
  readonly #routes: Route[] = []
  /** Routes that can match a path whose second segment is the key, in registration order (built on first use). */
  readonly #byPrefix = new Map<string, Route[]>()
  readonly #seconds = new Set<string>()

  on(method: string, path: string, handler: Handler, options: RouteOptions = {}): this {
    const parts = path.split('/').filter(Boolean)
    this.#routes.push({ method, parts, handler, options })
    if (parts[1] !== undefined) this.#seconds.add(parts[1])
    this.#byPrefix.clear()
    return this
  }

  match(method: string, path: string): { handler: Handler; params: Record<string, string>; options: RouteOptions } | 'method' | null {
    const parts = path.split('/').filter(Boolean)
    let methodMismatch = false
    for (const r of this.#candidates(parts[1] ?? '')) {
      const params = matchParts(r.parts, parts, path)
      if (!params) continue
      if (r.method !== method) {
        methodMismatch = true
        continue
      }
      return { handler: r.handler, params, options: r.options }
    }
    return methodMismatch ? 'method' : null
  }

  /** Every route but those whose literal second segment differs from `second` (42 routes: a scan of all cost 5 % of a leader's CPU per write). */
  #candidates(second: string): Route[] {
    // Keyed by the routes' own segments only, so odd paths cannot grow the map.
    const key = this.#seconds.has(second) ? second : '\0'
    let list = this.#byPrefix.get(key)
    if (!list) {
      list = this.#routes.filter((r) => {
        const p = r.parts[1]
        return p === undefined || p === key || p.startsWith(':') || p.startsWith('*')
      })
      this.#byPrefix.set(key, list)
    }
    return list
  }
}

function matchParts(pattern: string[], parts: string[], path: string): Record<string, string> | null {
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    if (p.startsWith('*')) {
      // The raw rest of the path: empty segments ("a//b") are the handler's to judge.
      params[p.slice(1)] = decodeURIComponent(path.split('/').slice(i + 1).join('/'))
      return params
    }
    if (i >= parts.length) return null
    if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]!)
    else if (p !== parts[i]) return null
  }
  return pattern.length === parts.length ? params : null
}

/** The whole body, read with plain events (an async iterator per request costs more than the rest of a small PUT's parsing). */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        done()
        // the rest is discarded once the error response is sent
        reject(new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      done()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    }
    const onError = (err: Error) => {
      done()
      reject(err)
    }
    const onAborted = () => onError(new Error('request aborted'))
    const done = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
    }
    const onClose = () => {
      if (!req.complete) onAborted()
    }
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose)
  })
}

export async function readTextBody(req: IncomingMessage): Promise<string> {
  return (await readBody(req)).toString('utf8')
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readTextBody(req)
  if (text.trim() === '') throw new HttpError(400, 'request body is empty; expected JSON', 'body')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`, 'body')
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (err instanceof HttpError) {
    sendJson(res, err.status, {
      error: err.message,
      ...(err.field ? { field: err.field } : {}),
      ...(err.errors ? { errors: err.errors } : {}),
      ...err.extra,
    })
  } else {
    sendJson(res, 500, { error: `internal error: ${(err as Error)?.message ?? String(err)}` })
  }
}
