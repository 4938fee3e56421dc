// Request/response between agents, riding the Raft transport's long-lived
// per-peer stream: followers forward writes and read barriers to the leader,
// and joining agents ask to be added.
export interface RpcTransport {
  send(to: string, message: object): void
}

type RpcFrame =
  | { rpc: 'req'; id: number; method: string; body: unknown }
  | { rpc: 'res'; id: number; ok: true; body: unknown }
  | { rpc: 'res'; id: number; ok: false; error: string; code: string }

/** An error a remote handler threw, with its kind (e.g. "not-leader") preserved. */
export class RemoteError extends Error {
  override name = 'RemoteError'
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

export type RpcHandler = (from: string, body: unknown) => Promise<unknown>

export class ClusterRpc {
  readonly #transport: RpcTransport
  readonly #handlers = new Map<string, RpcHandler>()
  readonly #pending = new Map<number, { to: string; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  readonly #codeOf: (err: unknown) => string
  #next = 1

  constructor(transport: RpcTransport, codeOf: (err: unknown) => string = () => 'error') {
    this.#transport = transport
    this.#codeOf = codeOf
  }

  handle(method: string, handler: RpcHandler): void {
    this.#handlers.set(method, handler)
  }

  call<T>(to: string, method: string, body: unknown, timeoutMs = 10_000): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new RemoteError('timeout', `no answer from ${to} to ${method} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { to, resolve: resolve as (v: unknown) => void, reject, timer })
      this.#transport.send(to, { rpc: 'req', id, method, body } satisfies RpcFrame)
    })
  }

  /** Handles `message` if it is an RPC frame; returns false for anything else. */
  dispatch(from: string, message: unknown): boolean {
    const f = message as Partial<RpcFrame> | null
    if (!f || typeof f !== 'object' || (f.rpc !== 'req' && f.rpc !== 'res') || typeof f.id !== 'number') return false
    if (f.rpc === 'res') {
      const p = this.#pending.get(f.id)
      if (!p) return true
      this.#pending.delete(f.id)
      clearTimeout(p.timer)
      if (f.ok) p.resolve((f as { body: unknown }).body)
      else p.reject(new RemoteError(String((f as { code?: unknown }).code), String((f as { error?: unknown }).error)))
      return true
    }
    const req = f as Extract<RpcFrame, { rpc: 'req' }>
    const handler = typeof req.method === 'string' ? this.#handlers.get(req.method) : undefined
    const reply = (frame: RpcFrame) => this.#transport.send(from, frame)
    if (!handler) {
      reply({ rpc: 'res', id: req.id, ok: false, code: 'unknown-method', error: `unknown method ${String(req.method)}` })
      return true
    }
    handler(from, req.body).then(
      (body) => reply({ rpc: 'res', id: req.id, ok: true, body: body ?? null }),
      (err: Error) => reply({ rpc: 'res', id: req.id, ok: false, code: this.#codeOf(err), error: err.message }),
    )
    return true
  }

  /** Fails every call still waiting on `peer` (it stopped being who we thought it was). */
  cancelPeer(peer: string, code: string, message: string): void {
    for (const [id, p] of this.#pending) {
      if (p.to !== peer) continue
      this.#pending.delete(id)
      clearTimeout(p.timer)
      p.reject(new RemoteError(code, message))
    }
  }

  close(): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer)
      p.reject(new RemoteError('closed', 'agent shutting down'))
    }
    this.#pending.clear()
  }
}
