// At most `limit` holders at a time; the others wait in arrival order.
export class Semaphore {
  readonly limit: number
  #held = 0
  readonly #waiting: (() => void)[] = []

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a whole number ≥ 1 (got ${limit})`)
    this.limit = limit
  }

  /** Runs `fn` once a slot is free; the slot is released when it settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#held >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#held++
    try {
      return await fn()
    } finally {
      const next = this.#waiting.shift()
      // The slot passes straight to the next waiter (held stays the same).
      if (next) next()
      else this.#held--
    }
  }
}
