// A thin client of the agent's HTTP API, used by the CLI and tests.
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

export class ApiClient {
  readonly base: string

  constructor(address: string) {
    this.base = normalizeAddress(address)
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.#json<T>('GET', path, undefined, signal)
  }

  /** A GET with the state index it was answered at (for `?index=N&wait=` blocking reads). */
  async getIndexed<T>(path: string, signal?: AbortSignal): Promise<{ body: T; index: number }> {
    const res = await this.#fetch('GET', path, undefined, signal)
    if (!res.ok) throw await toError(res)
    return { body: (await res.json()) as T, index: Number(res.headers.get('x-shoal-index') ?? 0) }
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#json<T>('POST', path, body)
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.#json<T>('PUT', path, body)
  }

  delete<T>(path: string): Promise<T> {
    return this.#json<T>('DELETE', path)
  }

  /** A streaming GET (logs): the response body as a web stream. */
  async stream(path: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#fetch('GET', path, undefined, signal)
    if (!res.ok) throw await toError(res)
    return res.body ?? new ReadableStream()
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.#fetch(method, path, body, signal)
    if (!res.ok) throw await toError(res)
    return (await res.json()) as T
  }

  async #fetch(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    try {
      return await fetch(this.base + path, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
        ...(signal ? { signal } : {}),
      })
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      const why = cause?.code ?? cause?.message ?? (err as Error).message
      throw new ApiError(0, `cannot reach the Shoal agent at ${this.base} (${why}); is "shoal agent" running? Set --address or SHOAL_ADDR`)
    }
  }
}

async function toError(res: Response): Promise<ApiError> {
  const text = await res.text()
  try {
    const body = JSON.parse(text) as { error?: string; field?: string; errors?: ApiProblem[] }
    return new ApiError(res.status, body.error ?? text, body.field, body.errors ?? [], body)
  } catch {
    return new ApiError(res.status, text || res.statusText)
  }
}
