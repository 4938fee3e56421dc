// Linearizability checker for a compare-and-set register per key, in the style
// of Knossos/Porcupine: the Wing & Gong search with Lowe's memoization of
// (linearized set, state), P-compositionality (each key is checked on its own).
//
// The model (one register per key; values are unique per write):
//   read → v      : the register holds v (null: absent, a 404)
//   write v       : the register becomes v
//   cas from → to : if the register holds `from` it becomes `to`, else the op fails.
// The client does CAS with `?cas=<modifyIndex>` using the index it saw with `from`;
// because every write has a unique value and a unique Raft index, "index matches" is
// "value matches" (checkIndexes() verifies that bijection from the history itself).
//
// Outcomes: `fail` ops did not happen and are dropped (a 409 CAS, a 503 retry, a
// refused connection, a read that timed out). `info` ops may take effect at any point
// after their invoke, or never: their return time is +infinity, so the search may
// linearize them anywhere later or leave them after every completed operation.
//
// Pruning: an info write (or info CAS) whose value nobody ever observes (no ok read
// returns it, no kept CAS expects it) is dropped — any linearization with it maps to
// one without it (put it "never"; info CASes it made fail are also put "never"), and
// the reverse is trivial. That keeps long runs full of timeouts from exploding.
import type { Operation } from './history.ts'

/** Encoded register state: 'n' absent, 'v<value>' a value, '*' unknown (any value). */
type State = string
const ABSENT = 'n'
export const ANY = '*'
const enc = (v: string | null | undefined): State => (v === null || v === undefined ? ABSENT : 'v' + v)
export const decodeState = (s: State): string | null => (s === ABSENT ? null : s === ANY ? '<any>' : s.slice(1))

/** One step of the model; undefined when `op` cannot happen in `state`. */
export function step(state: State, op: Operation): State | undefined {
  switch (op.f) {
    case 'read':
      if (state === ANY) return enc(op.value)
      return state === enc(op.value) ? state : undefined
    case 'write':
      return enc(op.value)
    case 'cas':
      if (op.status === 'ok') return state === ANY || state === enc(op.from) ? enc(op.to) : undefined
      // info: took effect if it held `from`; otherwise it failed and changed nothing.
      // From an unknown state "no effect" is the more permissive choice (ANY stays ANY).
      return state === enc(op.from) ? enc(op.to) : state
  }
}

/** Ops of one key the search needs: ok ops, and info writes/CASes whose value is observed. */
export function prepare(ops: readonly Operation[]): { kept: Operation[]; droppedInfo: number } {
  const candidates = ops.filter((o) => o.status === 'ok' || (o.status === 'info' && o.f !== 'read'))
  const observedByOk = new Set<string>()
  for (const o of candidates) {
    if (o.status !== 'ok') continue
    if (o.f === 'read' && o.value !== null && o.value !== undefined) observedByOk.add(o.value)
    if (o.f === 'cas' && o.from !== null && o.from !== undefined) observedByOk.add(o.from)
  }
  let infos = candidates.filter((o) => o.status === 'info')
  for (;;) {
    const observed = new Set(observedByOk)
    for (const o of infos) if (o.f === 'cas' && o.from != null) observed.add(o.from)
    const next = infos.filter((o) => observed.has((o.f === 'write' ? o.value : o.to) as string))
    if (next.length === infos.length) break
    infos = next
  }
  const keptInfo = new Set(infos)
  const kept = candidates.filter((o) => o.status === 'ok' || keptInfo.has(o))
  return { kept, droppedInfo: candidates.length - kept.length }
}

// ---- the search --------------------------------------------------------------

interface Entry {
  call: boolean
  op: number
  time: number
  match: Entry | null
  prev: Entry | null
  next: Entry | null
}

class Bitset {
  readonly words: Uint32Array
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) + 1)
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31)
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31))
  }
  /** Compact copy: the count of leading all-ones words, then the rest up to the last non-zero word. */
  snapshot(): Snapshot {
    const w = this.words
    let lead = 0
    while (lead < w.length && w[lead] === 0xffffffff) lead++
    let end = w.length
    while (end > lead && w[end - 1] === 0) end--
    return { lead, tail: w.slice(lead, end) }
  }
  equals(s: Snapshot): boolean {
    const w = this.words
    for (let i = 0; i < s.lead; i++) if (w[i] !== 0xffffffff) return false
    for (let i = 0; i < s.tail.length; i++) if (w[s.lead + i] !== s.tail[i]) return false
    for (let i = s.lead + s.tail.length; i < w.length; i++) if (w[i] !== 0) return false
    return true
  }
}

interface Snapshot {
  lead: number
  tail: Uint32Array
}

export interface SearchOptions {
  /** Give up (verdict unknown) after this many search steps. */
  maxSteps?: number
  /** Give up (verdict unknown) at this Date.now(). */
  deadline?: number
}

export type SearchResult =
  | { result: 'valid'; steps: number }
  | { result: 'unknown'; steps: number; reason: string }
  | {
    result: 'invalid'
    steps: number
    /** The deepest point the search reached: the last ops it could linearize, in order, and the state after them. */
    deepest: { linearizedOk: number; lastLinearized: Operation[]; state: string | null; blocking: Operation }
  }

function rng32(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/**
 * Is `ops` (one key, already prepared) linearizable from `init`? The Wing & Gong /
 * Lowe search as in Porcupine: a doubly linked list of call and return entries in
 * time order; linearizing an op lifts its call and return out of the list; meeting
 * the return of an op that is not linearized yet means backtracking.
 */
export function search(ops: readonly Operation[], init: State = ABSENT, opts: SearchOptions = {}): SearchResult {
  const maxSteps = opts.maxSteps ?? 50_000_000
  const totalOk = ops.filter((o) => o.status === 'ok').length
  if (totalOk === 0) return { result: 'valid', steps: 0 }
  // Entries sorted by time; at equal times calls come first (concurrent: the permissive choice).
  const entries: Entry[] = []
  for (const [i, o] of ops.entries()) {
    const call: Entry = { call: true, op: i, time: o.invoke, match: null, prev: null, next: null }
    const ret: Entry = { call: false, op: i, time: o.complete, match: null, prev: null, next: null }
    call.match = ret
    entries.push(call, ret)
  }
  entries.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.call === b.call ? a.op - b.op : a.call ? -1 : 1))
  const head: Entry = { call: false, op: -1, time: -Infinity, match: null, prev: null, next: null }
  let prev = head
  for (const e of entries) {
    prev.next = e
    e.prev = prev
    prev = e
  }
  const lift = (e: Entry) => {
    e.prev!.next = e.next
    e.next!.prev = e.prev
    const m = e.match!
    m.prev!.next = m.next
    if (m.next) m.next.prev = m.prev
  }
  const unlift = (e: Entry) => {
    const m = e.match!
    m.prev!.next = m
    if (m.next) m.next.prev = m
    e.prev!.next = e
    e.next!.prev = e
  }

  // Zobrist hashing of the linearized set (two 32-bit halves), verified against a compact copy.
  const rnd = rng32(0x5eed)
  const z1 = ops.map(() => rnd())
  const z2 = ops.map(() => rnd())
  let h1 = 0
  let h2 = 0
  const linearized = new Bitset(ops.length)
  const cache = new Map<string, Snapshot[]>()
  const seen = (state: State): boolean => {
    const key = `${h1}:${h2}:${state}`
    const list = cache.get(key)
    if (list?.some((s) => linearized.equals(s))) return true
    if (list) list.push(linearized.snapshot())
    else cache.set(key, [linearized.snapshot()])
    return false
  }

  const stack: { entry: Entry; state: State }[] = []
  let state = init
  let okDone = 0
  let steps = 0
  let best: { linearizedOk: number; lastLinearized: Operation[]; state: string | null; blocking: Operation } | undefined
  let entry: Entry | null = head.next
  while (entry) {
    if (okDone === totalOk) return { result: 'valid', steps }
    if (++steps > maxSteps) return { result: 'unknown', steps, reason: `search gave up after ${maxSteps} steps` }
    if ((steps & 0x3fff) === 0 && opts.deadline !== undefined && Date.now() > opts.deadline) return { result: 'unknown', steps, reason: 'search ran out of time' }
    if (entry.call) {
      const op = ops[entry.op]!
      const next = step(state, op)
      if (next !== undefined) {
        linearized.set(entry.op)
        h1 ^= z1[entry.op]!
        h2 ^= z2[entry.op]!
        if (!seen(next)) {
          stack.push({ entry, state })
          state = next
          if (op.status === 'ok') okDone++
          lift(entry)
          entry = head.next
          continue
        }
        linearized.clear(entry.op)
        h1 ^= z1[entry.op]!
        h2 ^= z2[entry.op]!
      }
      entry = entry.next
    } else {
      // The return of an op not linearized yet: something before it must change.
      if (!best || okDone > best.linearizedOk) {
        best = { linearizedOk: okDone, lastLinearized: stack.slice(-12).map((s) => ops[s.entry.op]!), state: decodeState(state), blocking: ops[entry.op]! }
      }
      const top = stack.pop()
      if (!top) break
      entry = top.entry
      state = top.state
      linearized.clear(entry.op)
      h1 ^= z1[entry.op]!
      h2 ^= z2[entry.op]!
      if (ops[entry.op]!.status === 'ok') okDone--
      unlift(entry)
      entry = entry.next
    }
  }
  if (okDone === totalOk) return { result: 'valid', steps }
  return { result: 'invalid', steps, deepest: best! }
}

// ---- windows -----------------------------------------------------------------

/**
 * Splits one key's prepared ops into segments at quiescent points: times when no
 * ok op is in flight (info ops never end, so they do not count). Every ok op of a
 * later segment was invoked after every ok op of an earlier one returned.
 */
export function segments(ops: readonly Operation[]): Operation[][] {
  const sorted = [...ops].sort((a, b) => a.invoke - b.invoke || a.id - b.id)
  const out: Operation[][] = []
  let cur: Operation[] = []
  let maxOkReturn = -Infinity
  for (const o of sorted) {
    if (cur.length > 0 && maxOkReturn < o.invoke && cur.some((c) => c.status === 'ok')) {
      out.push(cur)
      cur = []
    }
    cur.push(o)
    if (o.status === 'ok') maxOkReturn = Math.max(maxOkReturn, o.complete)
  }
  if (cur.length) out.push(cur)
  return out
}

/**
 * The sub-history of segments i..j: their ops, plus every info op invoked before
 * segment i (it may take effect inside the window). From an unknown initial state
 * (ANY) such a window being non-linearizable proves the whole history is not.
 */
function windowOps(segs: readonly Operation[][], i: number, j: number): Operation[] {
  const out: Operation[] = []
  for (let s = 0; s < i; s++) for (const o of segs[s]!) if (o.status === 'info') out.push(o)
  for (let s = i; s <= j; s++) out.push(...segs[s]!)
  return out
}

export interface Window {
  /** Ops of the smallest window found that is non-linearizable on its own, in invoke order. */
  ops: Operation[]
  from: number
  to: number
  /** True when the window was proven invalid from any initial state; false: it is the best effort (search budget). */
  proven: boolean
}

/**
 * The smallest run of consecutive segments that is not linearizable by itself:
 * binary search for the shortest failing prefix (from the empty register), then for
 * the latest start that still fails from any initial state. Both are monotone: a
 * linearization of a bigger window restricts to one of a smaller window.
 */
export function smallestFailingWindow(ops: readonly Operation[], opts: SearchOptions = {}): Window | undefined {
  const segs = segments(ops)
  const fails = (i: number, j: number): boolean | undefined => {
    const r = search(windowOps(segs, i, j), i === 0 ? ABSENT : ANY, opts)
    return r.result === 'unknown' ? undefined : r.result === 'invalid'
  }
  const whole = fails(0, segs.length - 1)
  if (whole !== true) return undefined
  let lo = 0
  let hi = segs.length - 1 // hi fails
  let proven = true
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const r = fails(0, mid)
    if (r === undefined) {
      proven = false
      break
    }
    if (r) hi = mid
    else lo = mid + 1
  }
  const j = hi
  let a = 0 // [a..j] fails
  let b = j
  while (a < b) {
    const mid = (a + b + 1) >>> 1
    const r = fails(mid, j)
    if (r === undefined) {
      proven = false
      break
    }
    if (r) a = mid
    else b = mid - 1
  }
  const windowList = windowOps(segs, a, j).sort((x, y) => x.invoke - y.invoke || x.id - y.id)
  // Info ops from before the window are included for soundness; show only those whose value the window observes.
  const inWindow = new Set(segs.slice(a, j + 1).flat())
  const observed = new Set<string>()
  for (const o of inWindow) {
    if (o.f === 'read' && o.value != null) observed.add(o.value)
    if (o.f === 'cas' && o.from != null) observed.add(o.from)
  }
  const shown = windowList.filter((o) => inWindow.has(o) || observed.has((o.f === 'write' ? o.value : o.to) as string))
  const from = Math.min(...segs[a]!.map((o) => o.invoke))
  const to = Math.max(...segs[j]!.map((o) => (Number.isFinite(o.complete) ? o.complete : o.invoke)))
  return { ops: shown, from, to, proven }
}

// ---- the index bijection -----------------------------------------------------

/** Every value seen with exactly one modifyIndex and every index with one value, per key. */
export function checkIndexes(ops: readonly Operation[]): string[] {
  const problems: string[] = []
  const byValue = new Map<string, { index: number; op: Operation }>()
  const byIndex = new Map<number, { value: string; op: Operation }>()
  for (const o of ops) {
    if (o.status !== 'ok' || o.modifyIndex === undefined) continue
    const value = o.f === 'write' ? o.value : o.f === 'cas' ? o.to : o.value
    if (value === null || value === undefined) continue
    const v = byValue.get(value)
    if (v && v.index !== o.modifyIndex) problems.push(`value ${JSON.stringify(value)} of ${o.key} seen at modifyIndex ${v.index} (op ${v.op.id}, ${v.op.f}) and ${o.modifyIndex} (op ${o.id}, ${o.f})`)
    else if (!v) byValue.set(value, { index: o.modifyIndex, op: o })
    const w = byIndex.get(o.modifyIndex)
    if (w && w.value !== value) problems.push(`modifyIndex ${o.modifyIndex} of ${o.key} holds ${JSON.stringify(w.value)} (op ${w.op.id}) and ${JSON.stringify(value)} (op ${o.id})`)
    else if (!w) byIndex.set(o.modifyIndex, { value, op: o })
  }
  return problems
}

// ---- whole history ---------------------------------------------------------------

export type Verdict = 'valid' | 'invalid' | 'unknown'

export interface KeyResult {
  key: string
  verdict: Verdict
  ops: { ok: number; fail: number; info: number; checked: number; droppedInfo: number }
  steps: number
  reason?: string
  deepest?: Extract<SearchResult, { result: 'invalid' }>['deepest']
  window?: Window
  indexProblems: string[]
}

export interface CheckResult {
  verdict: Verdict
  keys: KeyResult[]
  ms: number
}

/** Checks a whole history (all keys); invalid if any key is, unknown if any search gave up and none is invalid. */
export function checkHistory(ops: readonly Operation[], opts: SearchOptions & { windowBudgetMs?: number } = {}): CheckResult {
  const started = Date.now()
  const byKey = new Map<string, Operation[]>()
  for (const o of ops) {
    const list = byKey.get(o.key)
    if (list) list.push(o)
    else byKey.set(o.key, [o])
  }
  const keys: KeyResult[] = []
  for (const [key, kops] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const { kept, droppedInfo } = prepare(kops)
    const count = (s: string) => kops.filter((o) => o.status === s).length
    const r = search(kept, ABSENT, opts)
    const indexProblems = checkIndexes(kops)
    const res: KeyResult = {
      key, verdict: r.result, steps: r.steps, indexProblems,
      ops: { ok: count('ok'), fail: count('fail'), info: count('info'), checked: kept.length, droppedInfo },
    }
    if (r.result === 'unknown') res.reason = r.reason
    if (r.result === 'invalid') {
      res.deepest = r.deepest
      res.window = smallestFailingWindow(kept, { deadline: Date.now() + (opts.windowBudgetMs ?? 60_000), maxSteps: opts.maxSteps })
    }
    if (indexProblems.length > 0 && res.verdict !== 'invalid') {
      res.verdict = 'invalid'
      res.reason = 'values and modify indexes disagree'
    }
    keys.push(res)
  }
  const verdict: Verdict = keys.some((k) => k.verdict === 'invalid') ? 'invalid' : keys.some((k) => k.verdict === 'unknown') ? 'unknown' : 'valid'
  return { verdict, keys, ms: Date.now() - started }
}

/** A line per op for reports: relative time, process, call and outcome. */
export function formatOp(o: Operation, t0 = 0): string {
  const t = (x: number) => (Number.isFinite(x) ? ((x - t0) / 1000).toFixed(3) : '∞')
  const call = o.f === 'read' ? `read ${o.key}` : o.f === 'write' ? `write ${o.key} ${JSON.stringify(o.value)}` : `cas ${o.key} ${JSON.stringify(o.from)} → ${JSON.stringify(o.to)}`
  const result = o.status === 'ok'
    ? `ok${o.f === 'read' ? ` ${JSON.stringify(o.value)}` : ''}${o.modifyIndex !== undefined ? ` @${o.modifyIndex}` : ''}`
    : `${o.status}${o.error ? ` (${o.error})` : ''}`
  return `[${t(o.invoke)} .. ${t(o.complete)}] p${o.process}${o.node ? `@${o.node}` : ''} ${call} → ${result}`
}
