// Gives memory back once a burst of work is over. Under load V8 grows the
// young generation (to 2 × --max-semi-space-size) and the old one, and an idle
// agent does not shrink them again by itself: after 3 jobs of 50 allocations a
// --dev agent stayed at ~103 MiB RSS against ~90 at start. A memory-reducing
// full GC shrinks the heap and unmaps the pages V8 keeps pooled (a plain gc()
// does not); the one a script can ask for is gc({ flavor: 'last-resort' }),
// with --expose-gc (bin/shoal passes it to agents): ~103 → ~87 MiB in ~40 ms.
// It runs once the event loop has been nearly idle for a few ticks and the RSS
// has grown since the last one (at first: since zero, so once after start-up).

export interface IdleMemoryOptions {
  /** Event-loop utilization (0–1) of a tick under which the tick counts as quiet. */
  quietUtilization: number
  /** Consecutive quiet ticks before the GC runs. */
  quietTicks: number
  /** RSS growth (bytes) since the last GC (or since zero, at first) that makes one worth running. */
  minGrowth: number
}

export const IDLE_MEMORY_DEFAULTS: IdleMemoryOptions & { tickMs: number } = {
  tickMs: 2_000,
  quietUtilization: 0.05,
  quietTicks: 3,
  minGrowth: 4 * 1024 * 1024,
}

/** When to run the GC, from one reading per tick. No clock, no side effects. */
export class IdleMemoryPolicy {
  readonly #opts: IdleMemoryOptions
  #quiet = 0
  #baseline = 0

  constructor(opts: IdleMemoryOptions) {
    this.#opts = opts
  }

  /** One tick: the event loop's utilization over it and the RSS now. True: run the GC, then call `reduced`. */
  tick(utilization: number, rss: number): boolean {
    if (utilization >= this.#opts.quietUtilization) {
      this.#quiet = 0
      return false
    }
    this.#quiet++
    return this.#quiet >= this.#opts.quietTicks && rss >= this.#baseline + this.#opts.minGrowth
  }

  /** The GC ran and left the process at `rss`: the next one waits for growth beyond it. */
  reduced(rss: number): void {
    this.#baseline = rss
    this.#quiet = 0
  }
}

export interface IdleMemoryProbe {
  /** Event-loop utilization (0–1) since the previous call. */
  utilization(): number
  rss(): number
  gc(): void
}

/** Runs the policy on a probe; `tick` is what the timer calls. */
export class IdleMemoryReducer {
  readonly #policy: IdleMemoryPolicy
  readonly #probe: IdleMemoryProbe
  #timer: NodeJS.Timeout | undefined

  constructor(probe: IdleMemoryProbe, opts: IdleMemoryOptions = IDLE_MEMORY_DEFAULTS) {
    this.#probe = probe
    this.#policy = new IdleMemoryPolicy(opts)
  }

  /** One tick; returns the bytes the GC gave back, or undefined when it did not run. */
  tick(): number | undefined {
    const before = this.#probe.rss()
    if (!this.#policy.tick(this.#probe.utilization(), before)) return undefined
    this.#probe.gc()
    const after = this.#probe.rss()
    this.#policy.reduced(after)
    return before - after
  }

  start(tickMs = IDLE_MEMORY_DEFAULTS.tickMs): void {
    this.#timer ??= setInterval(() => this.tick(), tickMs).unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/** The reducer on this process, or undefined when it runs without --expose-gc. */
export function processIdleMemoryReducer(): IdleMemoryReducer | undefined {
  const gc = globalThis.gc
  if (!gc) return undefined
  const { eventLoopUtilization } = performance
  let last = eventLoopUtilization()
  return new IdleMemoryReducer({
    utilization: () => {
      const now = eventLoopUtilization()
      const { utilization } = eventLoopUtilization(now, last)
      last = now
      return utilization
    },
    rss: () => process.memoryUsage.rss(),
    gc: () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }),
  })
}
