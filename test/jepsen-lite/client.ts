// Clients: concurrent workers sending read / write / compare-and-set operations on
// a handful of keys to random agents over HTTP, recording invoke and completion
// events. How an HTTP outcome maps to the history:
//
//   write / cas   200 → ok · 409 → fail (CAS mismatch) · 503 {"retry": true} → fail
//                 503 {"outcome": "unknown"} or any other 5xx → info · other 4xx → fail
//                 connection refused → fail (nothing was sent) · timeout, reset → info
//   read          200 → ok (value) · 404 → ok (null) · anything else → fail (no effect)
//
// CAS is a read-modify-write: `?cas=<modifyIndex>` with the index this worker last saw
// for the key together with its value (from an ok read, write or CAS), recorded as
// cas(from: that value → to: a new unique value); with nothing seen yet, `?cas=0`
// (create only, from: null).
import type { Agent } from './cluster.ts'
import type { Fn, HistoryRecorder } from './history.ts'
import type { Random } from './prng.ts'

export interface ClientOptions {
  agents: readonly Agent[]
  keys: readonly string[]
  workers: number
  rand: Random
  recorder: HistoryRecorder
  /** Per-request timeout. */
  timeoutMs: number
  /** Pause between a worker's operations (ms, uniform in the range). */
  thinkMs?: [number, number]
  stop: () => boolean
  /** Prefix for written values, unique to the run. */
  valuePrefix: string
  /**
   * 'consistent' (default): `?consistent` reads through ReadIndex. 'local': plain GETs
   * answered from the agent's own state — not linearizable by design, used to show the
   * checker catches stale reads on a real cluster.
   */
  reads?: 'consistent' | 'local'
}

interface Outcome {
  type: 'ok' | 'fail' | 'info'
  value?: string | null
  modifyIndex?: number
  error?: string
}

async function request(url: string, init: RequestInit, timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> } | { error: string; refused: boolean }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })
    const text = await res.text()
    let body: Record<string, unknown> = {}
    try {
      body = JSON.parse(text) as Record<string, unknown>
    } catch {
      body = { raw: text.slice(0, 200) }
    }
    return { status: res.status, body }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    const code = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'error')
    return { error: code, refused: code === 'ECONNREFUSED' }
  }
}

export async function doRead(agent: Agent, key: string, timeoutMs: number, mode: 'consistent' | 'local' = 'consistent'): Promise<Outcome> {
  const r = await request(`${agent.address}/v1/var/${key}${mode === 'consistent' ? '?consistent' : ''}`, {}, timeoutMs)
  if ('error' in r) return { type: 'fail', error: r.error }
  if (r.status === 200) return { type: 'ok', value: String(r.body.value), modifyIndex: Number(r.body.modifyIndex) }
  if (r.status === 404) return { type: 'ok', value: null }
  return { type: 'fail', error: `${r.status} ${String(r.body.error ?? r.body.raw ?? '').slice(0, 120)}` }
}

export async function doWrite(agent: Agent, key: string, value: string, cas: number | undefined, timeoutMs: number): Promise<Outcome> {
  const url = `${agent.address}/v1/var/${key}${cas !== undefined ? `?cas=${cas}` : ''}`
  const r = await request(url, { method: 'PUT', body: JSON.stringify({ value }) }, timeoutMs)
  if ('error' in r) return { type: r.refused ? 'fail' : 'info', error: r.error }
  const msg = `${r.status} ${String(r.body.error ?? r.body.raw ?? '').slice(0, 120)}`
  if (r.status === 200) return { type: 'ok', modifyIndex: Number(r.body.modifyIndex) }
  if (r.status === 409) return { type: 'fail', error: `409 cas mismatch (current ${String(r.body.modifyIndex)})` }
  if (r.status === 503 && r.body.retry === true) return { type: 'fail', error: msg }
  if (r.status >= 500) return { type: 'info', error: msg }
  return { type: 'fail', error: msg }
}

export interface ClientStats { ok: number; fail: number; info: number; byF: Record<string, { ok: number; fail: number; info: number }> }

/** Runs the workers until `stop()`; resolves when every in-flight op has completed. */
export async function runClients(o: ClientOptions): Promise<ClientStats> {
  const stats: ClientStats = { ok: 0, fail: 0, info: 0, byF: {} }
  const think = o.thinkMs ?? [0, 20]
  const worker = async (w: number) => {
    const rand = o.rand.fork(`worker-${w}`)
    let proc = w
    let n = 0
    const seen = new Map<string, { value: string | null; index: number }>()
    let casNext: string | undefined
    while (!o.stop()) {
      // Half the CASes come right after a read of the same key (read-modify-write), so
      // they often hold the current index and race each other; the rest use whatever
      // this worker saw last, often stale (→ 409).
      const key = casNext ?? rand.pick(o.keys)
      const agent = rand.pick(o.agents)
      const r = rand.next()
      const f: Fn = casNext ? 'cas' : r < 0.4 ? 'read' : r < 0.7 ? 'write' : 'cas'
      casNext = f === 'read' && rand.next() < 0.35 ? key : undefined
      let outcome: Outcome
      if (f === 'read') {
        o.recorder.add({ type: 'invoke', process: proc, f, key, node: agent.name })
        outcome = await doRead(agent, key, o.timeoutMs, o.reads)
        if (outcome.type === 'ok') seen.set(key, { value: outcome.value ?? null, index: outcome.value === null ? 0 : outcome.modifyIndex! })
      } else {
        const value = `${o.valuePrefix}${w}-${n++}`
        const known = seen.get(key) ?? { value: null, index: 0 }
        if (f === 'write') {
          o.recorder.add({ type: 'invoke', process: proc, f, key, value, node: agent.name })
          outcome = await doWrite(agent, key, value, undefined, o.timeoutMs)
        } else {
          o.recorder.add({ type: 'invoke', process: proc, f, key, from: known.value, to: value, node: agent.name })
          outcome = await doWrite(agent, key, value, known.index, o.timeoutMs)
        }
        if (outcome.type === 'ok') seen.set(key, { value, index: outcome.modifyIndex! })
      }
      o.recorder.add({
        type: outcome.type, process: proc, f, key, node: agent.name,
        ...(f === 'read' && outcome.type === 'ok' ? { value: outcome.value ?? null } : {}),
        ...(outcome.modifyIndex !== undefined && outcome.type === 'ok' ? { modifyIndex: outcome.modifyIndex } : {}),
        ...(outcome.error ? { error: outcome.error } : {}),
      })
      stats[outcome.type]++
      const byF = (stats.byF[f] ??= { ok: 0, fail: 0, info: 0 })
      byF[outcome.type]++
      // After an info the op may still be running: continue as a new process (Jepsen's rule).
      if (outcome.type === 'info') proc += o.workers
      if (outcome.type === 'fail' && outcome.error === 'ECONNREFUSED') await new Promise((res) => setTimeout(res, 100))
      if (!casNext) await new Promise((res) => setTimeout(res, rand.between(think[0], think[1])))
    }
  }
  await Promise.all([...Array(o.workers).keys()].map(worker))
  return stats
}
