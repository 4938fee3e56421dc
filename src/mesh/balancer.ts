// Which instance a new connection goes to: pure, so the choice is tested
// without sockets. The caller keeps one Balancer per service (its cursor) and
// the live connection counts per backend.

export type BalanceMode = 'round-robin' | 'least-conn'
export const BALANCE_MODES: readonly BalanceMode[] = ['round-robin', 'least-conn']

/** One healthy instance of a service, as the proxy dials it. */
export interface Backend {
  /** Stable identity across catalog updates: `${allocId}/${address}:${port}`. */
  readonly key: string
  readonly address: string
  readonly port: number
}

export class Balancer {
  /** Where the next round-robin walk starts; also breaks least-conn ties, so equals take turns. */
  #cursor = 0

  /**
   * The backend for the next connection, skipping those `skip` says (already
   * tried for this connection, or recently failed); undefined when none is
   * left. `active(key)` is the number of open connections a backend has.
   */
  pick(backends: readonly Backend[], mode: BalanceMode, skip: (key: string) => boolean, active: (key: string) => number): Backend | undefined {
    const n = backends.length
    if (n === 0) return undefined
    const start = this.#cursor % n
    let best = -1
    let bestActive = Infinity
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n
      const b = backends[idx]!
      if (skip(b.key)) continue
      if (mode === 'round-robin') {
        best = idx
        break
      }
      const a = active(b.key)
      if (a < bestActive) {
        best = idx
        bestActive = a
        if (a === 0) break
      }
    }
    if (best < 0) return undefined
    this.#cursor = best + 1
    return backends[best]
  }
}

/**
 * Backends that just refused or timed out a connect are skipped for a while
 * (passive health), unless nothing else is left: the catalog's checks are the
 * authority, this only bridges the seconds before they notice.
 */
export class Ejections {
  readonly #until = new Map<string, number>()
  readonly #forMs: number

  constructor(forMs: number) {
    this.#forMs = forMs
  }

  /** How many keys are (or were, until looked at) ejected. */
  get size(): number {
    return this.#until.size
  }

  eject(key: string, now: number): void {
    this.#until.set(key, now + this.#forMs)
  }

  /** Whether `key` is ejected at `now` (an expired ejection is forgotten). */
  has(key: string, now: number): boolean {
    if (this.#until.size === 0) return false
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (until > now) return true
    this.#until.delete(key)
    return false
  }
}
