// Closed-loop load generator: each client sends its next write as soon as the
// previous one is answered. Only writes that complete inside the measured
// window (after the warm-up) count toward throughput and latency.
import { performance } from 'node:perf_hooks'
import { sleep, type Cluster, type Member } from './cluster.ts'
import { Histogram } from './histogram.ts'
import { keepAliveAgent, request } from './http.ts'

export interface LoadOptions {
  cluster: Cluster
  /** Client i writes through targets[i % targets.length]. */
  targets: Member[]
  clients: number
  warmupMs: number
  durationMs: number
  /** The value written (256 bytes in the benchmark). */
  value: string
  /** Called every ~250 ms during the measured window (used to watch the leader). */
  onTick?: () => Promise<void>
}

export interface LoadResult {
  clients: number
  via: string[]
  seconds: number
  ops: number
  errors: number
  opsPerSec: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  maxMs: number
  firstError?: string
}

/** Keys cycle per client so the stores stay small: bench/c<client>/<n>. */
const KEYS_PER_CLIENT = 1000

export async function closedLoop(o: LoadOptions): Promise<LoadResult> {
  const agent = keepAliveAgent(o.clients)
  const hist = new Histogram()
  let ops = 0
  let errors = 0
  let firstError: string | undefined
  const t0 = performance.now()
  const measureFrom = t0 + o.warmupMs
  const measureTo = measureFrom + o.durationMs

  const client = async (c: number) => {
    const base = o.targets[c % o.targets.length]!.url
    for (let seq = 0; performance.now() < measureTo; seq++) {
      const { method, path, body } = o.cluster.put(`bench/c${c}/${seq % KEYS_PER_CLIENT}`, o.value)
      const start = performance.now()
      let problem: string | undefined
      try {
        const res = await request(agent, method, base + path, body)
        if (res.status !== 200) problem = `${res.status} ${res.body.slice(0, 200)}`
      } catch (err) {
        problem = (err as Error).message
      }
      const end = performance.now()
      const counted = start >= measureFrom && end <= measureTo
      if (problem) {
        if (counted) errors++
        if (counted) firstError ??= problem
        await sleep(20)
      } else if (counted) {
        ops++
        hist.record(end - start)
      }
    }
  }

  let ticking = Boolean(o.onTick)
  const ticker = (async () => {
    while (ticking) {
      if (performance.now() >= measureFrom) await o.onTick!().catch(() => undefined)
      await sleep(250)
    }
  })()
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)))
  ticking = false
  await ticker
  agent.destroy()

  const seconds = o.durationMs / 1000
  return {
    clients: o.clients, via: [...new Set(o.targets.map((t) => t.name))], seconds, ops, errors,
    opsPerSec: ops / seconds, p50Ms: hist.quantile(0.5), p99Ms: hist.quantile(0.99), meanMs: hist.meanMs, maxMs: hist.maxMs,
    ...(firstError ? { firstError } : {}),
  }
}
