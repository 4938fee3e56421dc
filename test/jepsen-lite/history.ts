// The history of a run, Jepsen style: every client operation is an `invoke`
// event followed by exactly one completion from the same process:
//   ok   — it took effect (with what it returned),
//   fail — it definitely did not take effect,
//   info — unknown: it may take effect at any time after its invoke, or never.
// A process has at most one operation in flight; after an `info` the worker
// continues as a new process (as in Jepsen), since the old one may still be "running".
//
// On disk a history is JSON lines: a header, the events, and an end marker
// carrying the event count, so a truncated file is told apart from a complete one.

export type Fn = 'read' | 'write' | 'cas'
export type EventType = 'invoke' | 'ok' | 'fail' | 'info'

export interface HistoryEvent {
  type: EventType
  process: number
  f: Fn
  key: string
  /** Monotonic time in ms (performance.now() of the runner). */
  time: number
  /** write: the value written; read (ok): the value read, null when absent. */
  value?: string | null
  /** cas: the value the register must hold (null: must not exist, `?cas=0`). */
  from?: string | null
  /** cas: the new value. */
  to?: string
  /** The Raft index the agent reported (ok writes, ok reads). */
  modifyIndex?: number
  /** Which agent served it. */
  node?: string
  /** Why it failed or is unknown. */
  error?: string
}

export interface HistoryHeader {
  type: 'header'
  version: 1
  seed?: number
  /** performance.timeOrigin of the runner: wall time (ms since epoch) = timeOrigin + time. */
  timeOrigin?: number
  [k: string]: unknown
}

export interface HistoryEnd {
  type: 'end'
  events: number
}

/** One operation: an invoke and its completion. `complete` is Infinity for info. */
export interface Operation {
  id: number
  process: number
  f: Fn
  key: string
  status: 'ok' | 'fail' | 'info'
  invoke: number
  complete: number
  /** write value; cas to; read: value read (ok). */
  value?: string | null
  from?: string | null
  to?: string
  modifyIndex?: number
  node?: string
  error?: string
  /** Position of the invoke and completion events in the history (0-based). */
  invokeIndex: number
  completeIndex: number
}

export class HistoryError extends Error {
  override name = 'HistoryError'
}

const FNS: readonly string[] = ['read', 'write', 'cas']
const TYPES: readonly string[] = ['invoke', 'ok', 'fail', 'info']

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v)
}

/** Validates one event's shape; throws HistoryError naming the event and the field. */
export function validateEvent(raw: unknown, where: string): HistoryEvent {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HistoryError(`${where}: an event must be a JSON object (got ${describe(raw)})`)
  const e = raw as Record<string, unknown>
  if (typeof e.type !== 'string' || !TYPES.includes(e.type)) throw new HistoryError(`${where}: type must be one of ${TYPES.join(', ')} (got ${describe(e.type)})`)
  if (typeof e.process !== 'number' || !Number.isInteger(e.process)) throw new HistoryError(`${where}: process must be an integer (got ${describe(e.process)})`)
  if (typeof e.f !== 'string' || !FNS.includes(e.f)) throw new HistoryError(`${where}: f must be one of ${FNS.join(', ')} (got ${describe(e.f)})`)
  if (typeof e.key !== 'string') throw new HistoryError(`${where}: key must be a string (got ${describe(e.key)})`)
  if (typeof e.time !== 'number' || !Number.isFinite(e.time)) throw new HistoryError(`${where}: time must be a finite number (got ${describe(e.time)})`)
  const strOrNull = (v: unknown) => v === null || typeof v === 'string'
  if (e.type === 'invoke') {
    if (e.f === 'write' && typeof e.value !== 'string') throw new HistoryError(`${where}: a write invoke needs a string value (got ${describe(e.value)})`)
    if (e.f === 'cas' && (!strOrNull(e.from) || typeof e.to !== 'string')) throw new HistoryError(`${where}: a cas invoke needs from (string or null) and to (string) (got from ${describe(e.from)}, to ${describe(e.to)})`)
  }
  if (e.type === 'ok' && e.f === 'read' && !strOrNull(e.value)) throw new HistoryError(`${where}: an ok read needs value (string, or null when absent) (got ${describe(e.value)})`)
  if (e.modifyIndex !== undefined && (typeof e.modifyIndex !== 'number' || !Number.isInteger(e.modifyIndex))) throw new HistoryError(`${where}: modifyIndex must be an integer (got ${describe(e.modifyIndex)})`)
  return e as unknown as HistoryEvent
}

/**
 * Pairs invokes with completions. Throws HistoryError on anything that is not a
 * well-formed history: a completion with no invoke, two invokes in flight on one
 * process, time going backwards, a completion for another key or function, or —
 * unless `allowPending` — an invoke that never completed.
 */
export function pairOperations(events: readonly HistoryEvent[], opts: { allowPending?: boolean; where?: (i: number) => string } = {}): Operation[] {
  const where = opts.where ?? ((i: number) => `event ${i + 1}`)
  const open = new Map<number, { op: Operation }>()
  const ops: Operation[] = []
  let lastTime = -Infinity
  for (const [i, e] of events.entries()) {
    if (e.time < lastTime) throw new HistoryError(`${where(i)}: time ${e.time} is before the previous event's ${lastTime}; events must be in time order`)
    lastTime = e.time
    if (e.type === 'invoke') {
      if (open.has(e.process)) throw new HistoryError(`${where(i)}: process ${e.process} invoked a ${e.f} while its ${open.get(e.process)!.op.f} (${where(open.get(e.process)!.op.invokeIndex)}) had not completed`)
      const op: Operation = {
        id: ops.length, process: e.process, f: e.f, key: e.key, status: 'info', invoke: e.time, complete: Infinity,
        invokeIndex: i, completeIndex: -1,
        ...(e.f === 'write' ? { value: e.value } : {}),
        ...(e.f === 'cas' ? { from: e.from, to: e.to } : {}),
        ...(e.node !== undefined ? { node: e.node } : {}),
      }
      ops.push(op)
      open.set(e.process, { op })
      continue
    }
    const pending = open.get(e.process)
    if (!pending) throw new HistoryError(`${where(i)}: ${e.type} for process ${e.process} with no operation in flight`)
    const op = pending.op
    if (op.f !== e.f || op.key !== e.key) throw new HistoryError(`${where(i)}: ${e.type} ${e.f} ${JSON.stringify(e.key)} does not match the invoke of process ${e.process} (${op.f} ${JSON.stringify(op.key)} at ${where(op.invokeIndex)})`)
    open.delete(e.process)
    op.status = e.type as 'ok' | 'fail' | 'info'
    op.completeIndex = i
    op.complete = e.type === 'info' ? Infinity : e.time
    if (e.f === 'read' && e.type === 'ok') op.value = e.value ?? null
    if (e.modifyIndex !== undefined) op.modifyIndex = e.modifyIndex
    if (e.node !== undefined) op.node = e.node
    if (e.error !== undefined) op.error = e.error
  }
  if (open.size > 0 && !opts.allowPending) {
    const first = [...open.values()].map((p) => p.op).sort((a, b) => a.invokeIndex - b.invokeIndex)[0]!
    throw new HistoryError(`${open.size} operation(s) never completed (first: process ${first.process} ${first.f} ${JSON.stringify(first.key)} at ${where(first.invokeIndex)}); a complete history ends every invoke with ok, fail or info`)
  }
  return ops
}

export interface ParsedHistory {
  header: HistoryHeader
  events: HistoryEvent[]
  ops: Operation[]
}

/** Parses a JSON-lines history file's text; every problem is a HistoryError with its line number. */
export function parseHistory(text: string, name = 'history'): ParsedHistory {
  if (text.trim() === '') throw new HistoryError(`${name} is empty`)
  const lines = text.split('\n')
  // A trailing newline is normal; any other empty line is not.
  if (lines[lines.length - 1] === '') lines.pop()
  const lineOf: number[] = []
  const events: HistoryEvent[] = []
  let header: HistoryHeader | undefined
  let end: HistoryEnd | undefined
  for (const [i, line] of lines.entries()) {
    const where = `${name}:${i + 1}`
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch (err) {
      const last = i === lines.length - 1
      throw new HistoryError(`${where}: not valid JSON (${(err as Error).message})${last ? '; the file looks truncated' : ''}`)
    }
    if (end) throw new HistoryError(`${where}: content after the end marker`)
    const type = (raw as { type?: unknown } | null)?.type
    if (i === 0) {
      if (type !== 'header') throw new HistoryError(`${where}: the first line must be the header {"type":"header","version":1,...} (got ${describe(type)})`)
      if ((raw as HistoryHeader).version !== 1) throw new HistoryError(`${where}: unsupported history version ${describe((raw as HistoryHeader).version)}`)
      header = raw as HistoryHeader
      continue
    }
    if (type === 'header') throw new HistoryError(`${where}: a second header`)
    if (type === 'end') {
      const n = (raw as HistoryEnd).events
      if (n !== events.length) throw new HistoryError(`${where}: the end marker counts ${describe(n)} events but the file holds ${events.length}; events are missing or duplicated`)
      end = raw as HistoryEnd
      continue
    }
    events.push(validateEvent(raw, where))
    lineOf.push(i + 1)
  }
  if (!header) throw new HistoryError(`${name}: no header`)
  if (!end) throw new HistoryError(`${name}: no end marker after ${events.length} events (last line ${lines.length}); the history is truncated — refusing to check a partial history`)
  const ops = pairOperations(events, { where: (i) => `${name}:${lineOf[i] ?? '?'}` })
  return { header, events, ops }
}

export function serializeHistory(header: Omit<HistoryHeader, 'type' | 'version'>, events: readonly HistoryEvent[]): string {
  const lines = [JSON.stringify({ type: 'header', version: 1, ...header })]
  for (const e of events) lines.push(JSON.stringify(e))
  lines.push(JSON.stringify({ type: 'end', events: events.length }))
  return lines.join('\n') + '\n'
}

/** Builds a history in memory: the clients' recorder and the tests' way to write histories by hand. */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = []
  readonly #now: () => number
  #last = -Infinity

  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  add(e: Omit<HistoryEvent, 'time'> & { time?: number }): HistoryEvent {
    // performance.now() is monotonic; guard anyway so the file is always in order.
    const time = Math.max(e.time ?? this.#now(), this.#last)
    this.#last = time
    const event = { ...e, time } as HistoryEvent
    this.events.push(event)
    return event
  }
}
