// The jepsen-lite linearizability checker on hand-written histories: it must
// reject a stale read, a lost write, a double CAS success and reads served by
// a partitioned old leader, and accept tricky valid histories (concurrency,
// info operations that took effect late or never). Random histories from a
// real atomic register must always pass, and small ones agree with brute force.
import test from 'ava'
import { checkHistory, formatOp, prepare, search, segments, smallestFailingWindow } from '../jepsen-lite/checker.ts'
import { pairOperations, type Fn, type HistoryEvent, type Operation } from '../jepsen-lite/history.ts'
import { Random } from '../jepsen-lite/prng.ts'

interface Spec {
  p: number
  f: Fn
  key?: string
  /** write value; read result (ok) */
  v?: string | null
  from?: string | null
  to?: string
  /** invoke and completion times */
  t: readonly [number, number]
  s?: 'ok' | 'fail' | 'info'
  idx?: number
}

/** Builds a history from op specs (events in time order) and pairs it, as a real file would be. */
function h(...specs: Spec[]): Operation[] {
  const events: HistoryEvent[] = []
  for (const s of specs) {
    const key = s.key ?? 'x'
    const status = s.s ?? 'ok'
    events.push({
      type: 'invoke', process: s.p, f: s.f, key, time: s.t[0],
      ...(s.f === 'write' ? { value: s.v as string } : {}), ...(s.f === 'cas' ? { from: s.from ?? null, to: s.to! } : {}),
    })
    events.push({
      type: status, process: s.p, f: s.f, key, time: s.t[1],
      ...(s.f === 'read' && status === 'ok' ? { value: s.v ?? null } : {}), ...(s.idx !== undefined ? { modifyIndex: s.idx } : {}),
    })
  }
  // Stable by time; at equal times, keep spec order.
  const order = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.time - b.e.time || a.i - b.i).map((x) => x.e)
  return pairOperations(order)
}

const verdict = (ops: Operation[]) => checkHistory(ops).verdict

// ---- valid histories -------------------------------------------------------------

test('sequential write then read is valid; a fresh key reads null', (t) => {
  t.is(verdict(h({ p: 0, f: 'read', v: null, t: [0, 1] }, { p: 0, f: 'write', v: 'a', t: [2, 3] }, { p: 0, f: 'read', v: 'a', t: [4, 5] })), 'valid')
})

test('a read concurrent with a write may see the old or the new value', (t) => {
  const w = { p: 0, f: 'write', v: 'a', t: [0, 10] } as const
  t.is(verdict(h(w, { p: 1, f: 'read', v: null, t: [1, 2] })), 'valid')
  t.is(verdict(h(w, { p: 1, f: 'read', v: 'a', t: [1, 2] })), 'valid')
  // ...but once one read saw the new value, a later read cannot go back.
  t.is(verdict(h(w, { p: 1, f: 'read', v: 'a', t: [1, 2] }, { p: 2, f: 'read', v: null, t: [3, 4] })), 'invalid')
  // Two overlapping reads can disagree in either order while the write is in flight.
  t.is(verdict(h(w, { p: 1, f: 'read', v: 'a', t: [1, 4] }, { p: 2, f: 'read', v: null, t: [2, 3] })), 'valid')
})

test('concurrent writes may linearize in either order', (t) => {
  const ws = [{ p: 0, f: 'write', v: 'a', t: [0, 5] }, { p: 1, f: 'write', v: 'b', t: [1, 6] }] as const
  t.is(verdict(h(...ws, { p: 2, f: 'read', v: 'a', t: [7, 8] }, { p: 2, f: 'read', v: 'a', t: [9, 10] })), 'valid')
  t.is(verdict(h(...ws, { p: 2, f: 'read', v: 'b', t: [7, 8] })), 'valid')
  t.is(verdict(h(...ws, { p: 2, f: 'read', v: 'b', t: [7, 8] }, { p: 3, f: 'read', v: 'a', t: [9, 10] })), 'invalid')
})

test('an info write may take effect long after its client gave up', (t) => {
  const ops = h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'write', v: 'late', t: [2, 3], s: 'info' },
    { p: 2, f: 'read', v: 'a', t: [4, 5] },
    { p: 2, f: 'read', v: 'a', t: [20, 21] },
    { p: 3, f: 'read', v: 'late', t: [30, 31] },
    { p: 3, f: 'read', v: 'late', t: [32, 33] },
  )
  t.is(verdict(ops), 'valid')
})

test('an info write may never take effect', (t) => {
  const ops = h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'write', v: 'lost-in-flight', t: [2, 3], s: 'info' },
    { p: 2, f: 'read', v: 'a', t: [4, 5] },
    { p: 2, f: 'read', v: 'a', t: [50, 51] },
  )
  t.is(verdict(ops), 'valid')
  t.is(prepare(ops).droppedInfo, 1, 'an unobserved info write is pruned')
})

test('an info write cannot take effect before it was invoked, nor un-happen once seen', (t) => {
  t.is(verdict(h({ p: 0, f: 'read', v: 'x1', t: [0, 1] }, { p: 1, f: 'write', v: 'x1', t: [2, 3], s: 'info' })), 'invalid')
  t.is(verdict(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'write', v: 'b', t: [2, 3], s: 'info' },
    { p: 2, f: 'read', v: 'b', t: [4, 5] },
    { p: 2, f: 'read', v: 'a', t: [6, 7] },
  )), 'invalid')
})

test('CAS: concurrent CASes from the same value, one wins; the failed one does not count', (t) => {
  const ops = h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'cas', from: 'a', to: 'b', t: [2, 6] },
    { p: 2, f: 'cas', from: 'a', to: 'c', t: [3, 5], s: 'fail' },
    { p: 3, f: 'read', v: 'b', t: [7, 8] },
  )
  t.is(verdict(ops), 'valid')
})

test('CAS: create-only (from null) succeeds once; info CAS that took effect late', (t) => {
  t.is(verdict(h(
    { p: 0, f: 'cas', from: null, to: 'a', t: [0, 1] },
    { p: 1, f: 'cas', from: 'a', to: 'b', t: [2, 3], s: 'info' },
    { p: 2, f: 'read', v: 'a', t: [4, 5] },
    { p: 2, f: 'read', v: 'b', t: [6, 7] },
  )), 'valid')
  // The info CAS cannot apply after `a` was overwritten by c (its precondition no longer holds).
  t.is(verdict(h(
    { p: 0, f: 'cas', from: null, to: 'a', t: [0, 1] },
    { p: 1, f: 'cas', from: 'a', to: 'b', t: [2, 3], s: 'info' },
    { p: 2, f: 'write', v: 'c', t: [4, 5] },
    { p: 2, f: 'read', v: 'b', t: [6, 7] },
  )), 'invalid')
})

test('a chain of info ops that took effect in an order different from their invokes', (t) => {
  t.is(verdict(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1], s: 'info' },
    { p: 1, f: 'write', v: 'b', t: [2, 3], s: 'info' },
    { p: 2, f: 'read', v: 'b', t: [4, 5] },
    { p: 3, f: 'read', v: 'a', t: [6, 7] },
  )), 'valid')
})

test('failed reads and failed writes carry no information', (t) => {
  t.is(verdict(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'read', v: 'garbage', t: [2, 3], s: 'fail' },
    { p: 2, f: 'write', v: 'never', t: [2, 3], s: 'fail' },
    { p: 3, f: 'read', v: 'a', t: [4, 5] },
  )), 'valid')
})

test('keys are independent', (t) => {
  t.is(verdict(h(
    { p: 0, f: 'write', key: 'k1', v: 'a', t: [0, 1] },
    { p: 1, f: 'write', key: 'k2', v: 'b', t: [0, 1] },
    { p: 0, f: 'read', key: 'k1', v: 'a', t: [2, 3] },
    { p: 1, f: 'read', key: 'k2', v: 'b', t: [2, 3] },
  )), 'valid')
})

// ---- invalid histories -------------------------------------------------------------

test('catches a stale read', (t) => {
  const res = checkHistory(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 0, f: 'write', v: 'b', t: [2, 3] },
    { p: 1, f: 'read', v: 'a', t: [4, 5] },
  ))
  t.is(res.verdict, 'invalid')
  const k = res.keys[0]!
  t.is(k.deepest!.blocking.f, 'read')
  t.is(k.deepest!.blocking.value, 'a')
})

test('catches a lost write: acknowledged, then never visible', (t) => {
  t.is(verdict(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'write', v: 'acked', t: [2, 3] },
    { p: 2, f: 'read', v: 'a', t: [4, 5] },
  )), 'invalid')
  t.is(verdict(h({ p: 0, f: 'write', v: 'acked', t: [0, 1] }, { p: 1, f: 'read', v: null, t: [2, 3] })), 'invalid')
})

test('catches a double CAS success', (t) => {
  // Both CASes from `a` acknowledged, concurrently: only one can have seen `a`.
  t.is(verdict(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1] },
    { p: 1, f: 'cas', from: 'a', to: 'b', t: [2, 6] },
    { p: 2, f: 'cas', from: 'a', to: 'c', t: [3, 5] },
  )), 'invalid')
  // Create-only twice.
  t.is(verdict(h({ p: 1, f: 'cas', from: null, to: 'b', t: [0, 1] }, { p: 2, f: 'cas', from: null, to: 'c', t: [2, 3] })), 'invalid')
})

test('catches a read of a value nobody wrote', (t) => {
  t.is(verdict(h({ p: 0, f: 'write', v: 'a', t: [0, 1] }, { p: 1, f: 'read', v: 'zzz', t: [2, 3] })), 'invalid')
})

test('catches one modify index reported for two values', (t) => {
  const res = checkHistory(h(
    { p: 0, f: 'write', v: 'a', t: [0, 1], idx: 7 },
    { p: 0, f: 'write', v: 'b', t: [2, 3], idx: 7 },
    { p: 1, f: 'read', v: 'b', t: [4, 5], idx: 7 },
  ))
  t.is(res.verdict, 'invalid')
  t.regex(res.keys[0]!.indexProblems.join('\n'), /modifyIndex 7 of x holds "a".*and "b"/)
})

test('a search that runs out of budget says unknown, never valid', (t) => {
  const specs: Spec[] = []
  // Many concurrent writes with reads that force a lot of backtracking.
  for (let i = 0; i < 14; i++) specs.push({ p: i, f: 'write', v: `w${i}`, t: [0, 100] })
  specs.push({ p: 100, f: 'read', v: 'nope', t: [101, 102] })
  const res = checkHistory(h(...specs), { maxSteps: 1000 })
  t.is(res.verdict, 'unknown')
  t.regex(res.keys[0]!.reason!, /gave up/)
})

// ---- a broken read path -----------------------------------------------------------

/**
 * Built the way Shoal would behave if `?consistent` reads skipped ReadIndex: n1
 * is the leader, gets partitioned away with the majority electing n2, and keeps
 * answering reads from its own stale state while writes continue on the majority.
 */
function staleLeaderHistory(rand: Random): Operation[] {
  const events: HistoryEvent[] = []
  let time = 0
  let proc = 0
  let value: string | null = null
  let n = 0
  const node = () => rand.pick(['n2', 'n3', 'n4', 'n5'])
  const op = (f: Fn, extra: Partial<HistoryEvent>, result: Partial<HistoryEvent>, served = node()) => {
    const p = proc++ % 4
    events.push({ type: 'invoke', process: p, f, key: 'k', time: time++, node: served, ...extra })
    events.push({ type: 'ok', process: p, f, key: 'k', time: time++, node: served, ...result })
  }
  // Healthy: writes and reads through everyone.
  for (let i = 0; i < 40; i++) {
    if (rand.next() < 0.5) {
      value = `v${n++}`
      op('write', { value }, {})
    } else op('read', {}, { value })
  }
  // Partition: n1 (old leader) is cut off; it still serves reads of what it had.
  const frozen = value
  for (let i = 0; i < 40; i++) {
    const r = rand.next()
    if (r < 0.5) {
      value = `v${n++}`
      op('write', { value }, {})
    } else if (r < 0.75) op('read', {}, { value: frozen }, 'n1')
    else op('read', {}, { value })
  }
  return pairOperations(events)
}

test('reads served stale by a partitioned old leader are caught, with a small failing window', (t) => {
  const ops = staleLeaderHistory(new Random(7))
  const res = checkHistory(ops)
  t.is(res.verdict, 'invalid')
  const w = res.keys[0]!.window!
  t.true(w.proven)
  t.true(w.ops.length <= 4, `window of ${w.ops.length} ops:\n${w.ops.map((o) => formatOp(o)).join('\n')}`)
  t.true(w.ops.some((o) => o.node === 'n1' && o.f === 'read'), 'the window holds a stale read from n1')
  t.log(w.ops.map((o) => formatOp(o)).join('\n'))
})

test('smallest failing window: one stale read in a long valid history', (t) => {
  const specs: Spec[] = []
  let time = 0
  for (let i = 0; i < 300; i++) {
    specs.push({ p: 0, f: 'write', v: `v${i}`, t: [time, time + 1] })
    specs.push({ p: 1, f: 'read', v: i === 150 ? 'v148' : `v${i}`, t: [time + 2, time + 3] })
    time += 4
  }
  const ops = h(...specs)
  const res = checkHistory(ops)
  t.is(res.verdict, 'invalid')
  const w = res.keys[0]!.window!
  t.true(w.proven)
  t.deepEqual(w.ops.map((o) => `${o.f} ${o.value}`), ['write v150', 'read v148'])
  t.is(smallestFailingWindow(prepare(ops).kept)!.ops.length, 2)
})

// ---- generated histories ----------------------------------------------------------

interface GenOptions { procs: number; ops: number; keys: number; infoRate: number; casRate: number }

/**
 * A real atomic register behind simulated clients: each op takes effect at a random
 * point inside its interval (info ops: maybe later, maybe never), so the history is
 * linearizable by construction.
 */
function atomicHistory(rand: Random, o: GenOptions): Operation[] {
  type Pending = { p: number; f: Fn; key: string; invoke: number; effect: number; end: number; info: boolean; value?: string; from?: string | null; to?: string }
  const state = new Map<string, string | null>()
  const known = new Map<string, (string | null)[]>()
  const pending: Pending[] = []
  let n = 0
  for (let i = 0; i < o.ops; i++) {
    const p = i % o.procs
    const invoke = i * 10 + rand.int(0, 9)
    const len = rand.int(1, 60)
    const key = `k${rand.int(0, o.keys - 1)}`
    const r = rand.next()
    // Reads never end as info (a read that times out is a fail); writes and CASes may.
    const info = r < o.casRate + 0.35 && rand.next() < o.infoRate
    const effect = info && rand.next() < 0.3 ? Infinity : invoke + rand.between(0, info ? len * 3 : len)
    const base = { p, key, invoke, effect, end: invoke + len, info }
    if (r < o.casRate) {
      const seen = known.get(key) ?? [null]
      pending.push({ ...base, f: 'cas', from: rand.pick(seen), to: `c${n++}` })
    } else if (r < o.casRate + 0.35) pending.push({ ...base, f: 'write', value: `w${n++}` })
    else pending.push({ ...base, f: 'read' })
    const last = pending[pending.length - 1]!
    if (last.f === 'write') known.set(key, [...(known.get(key) ?? [null]), last.value!])
    if (last.f === 'cas') known.set(key, [...(known.get(key) ?? [null]), last.to!])
  }
  // Apply effects in effect order to learn each op's result.
  const results = new Map<Pending, { ok: boolean; value?: string | null }>()
  for (const q of pending.filter((x) => Number.isFinite(x.effect)).sort((a, b) => a.effect - b.effect)) {
    const cur = state.get(q.key) ?? null
    if (q.f === 'read') results.set(q, { ok: true, value: cur })
    else if (q.f === 'write') {
      state.set(q.key, q.value!)
      results.set(q, { ok: true })
    } else if (cur === q.from) {
      state.set(q.key, q.to!)
      results.set(q, { ok: true })
    } else results.set(q, { ok: false })
  }
  // Processes must not overlap: give each op its own process id (like retiring after info).
  const events: HistoryEvent[] = []
  for (const [i, q] of pending.entries()) {
    const r = results.get(q)
    const base = { process: i, f: q.f, key: q.key }
    events.push({ ...base, type: 'invoke', time: q.invoke, ...(q.f === 'write' ? { value: q.value! } : {}), ...(q.f === 'cas' ? { from: q.from!, to: q.to! } : {}) })
    const type = q.info ? 'info' : r?.ok ? 'ok' : 'fail'
    events.push({ ...base, type, time: q.end, ...(q.f === 'read' && type === 'ok' ? { value: r!.value ?? null } : {}) })
  }
  events.sort((a, b) => a.time - b.time)
  return pairOperations(events)
}

test('random histories of a real atomic register are always valid', (t) => {
  for (let seed = 1; seed <= 150; seed++) {
    const rand = new Random(seed)
    const ops = atomicHistory(rand, { procs: rand.int(2, 8), ops: rand.int(20, 400), keys: rand.int(1, 3), infoRate: rand.pick([0, 0.05, 0.3]), casRate: 0.3 })
    const res = checkHistory(ops)
    t.is(res.verdict, 'valid', `seed ${seed}: ${JSON.stringify(res.keys.map((k) => [k.key, k.verdict, k.steps]))}`)
  }
})

/** All orders of the ops that respect real time, each info op placed or left out. */
function bruteForce(ops: Operation[]): boolean {
  const kept = ops.filter((o) => o.status === 'ok' || (o.status === 'info' && o.f !== 'read'))
  const okCount = kept.filter((o) => o.status === 'ok').length
  const go = (done: Set<Operation>, state: string | null, okDone: number): boolean => {
    if (okDone === okCount) return true
    for (const o of kept) {
      if (done.has(o)) continue
      // Minimal: no undone ok op returned before o was invoked.
      if (kept.some((x) => !done.has(x) && x !== o && x.status === 'ok' && x.complete < o.invoke)) continue
      let next: string | null | undefined
      if (o.f === 'read') next = o.value === state ? state : undefined
      else if (o.f === 'write') next = o.value!
      else if (o.status === 'ok') next = state === o.from ? o.to! : undefined
      else next = state === o.from ? o.to! : state
      if (next === undefined) continue
      done.add(o)
      if (go(done, next, okDone + (o.status === 'ok' ? 1 : 0))) return true
      done.delete(o)
    }
    return false
  }
  return go(new Set(), null, 0)
}

test('small random histories (with corrupted reads) agree with brute force', (t) => {
  let invalid = 0
  for (let seed = 1; seed <= 400; seed++) {
    const rand = new Random(seed * 31)
    const ops = atomicHistory(rand, { procs: 3, ops: rand.int(3, 7), keys: 1, infoRate: 0.25, casRate: 0.35 })
    // Corrupt a read now and then so both verdicts show up.
    const reads = ops.filter((o) => o.f === 'read' && o.status === 'ok')
    if (reads.length && rand.next() < 0.6) {
      const values = [null, ...ops.filter((o) => o.f !== 'read').map((o) => (o.f === 'write' ? o.value! : o.to!))]
      rand.pick(reads).value = rand.pick(values)
    }
    const expected = bruteForce(ops)
    if (!expected) invalid++
    t.is(checkHistory(ops).verdict, expected ? 'valid' : 'invalid', `seed ${seed}:\n${ops.map((o) => formatOp(o)).join('\n')}`)
  }
  t.true(invalid > 30, `both verdicts exercised (${invalid} invalid)`)
})

test('segments split at points where no ok op is in flight; info ops do not hold a segment open', (t) => {
  const ops = prepare(h(
    { p: 0, f: 'write', v: 'a', t: [0, 2] },
    { p: 1, f: 'read', v: null, t: [1, 3] },
    { p: 2, f: 'write', v: 'b', t: [4, 5], s: 'info' },
    { p: 0, f: 'read', v: 'b', t: [6, 7] },
    { p: 1, f: 'read', v: 'b', t: [8, 9] },
  )).kept
  t.deepEqual(segments(ops).map((s) => s.length), [2, 2, 1])
  t.is(search(ops).result, 'valid')
})
