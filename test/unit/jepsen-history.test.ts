// jepsen-lite history files: a complete one round-trips; a truncated or malformed
// one is refused with a clear error (never checked as "valid"), by the parser and
// by `node test/jepsen-lite/check.ts FILE`.
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HistoryError, HistoryRecorder, pairOperations, parseHistory, serializeHistory, type HistoryEvent } from '../jepsen-lite/history.ts'

const CHECK = fileURLToPath(new URL('../jepsen-lite/check.ts', import.meta.url))

function sample(): HistoryEvent[] {
  let t = 0
  const r = new HistoryRecorder(() => t++)
  r.add({ type: 'invoke', process: 0, f: 'write', key: 'k', value: 'a', node: 'n1' })
  r.add({ type: 'invoke', process: 1, f: 'read', key: 'k', node: 'n2' })
  r.add({ type: 'ok', process: 0, f: 'write', key: 'k', modifyIndex: 5 })
  r.add({ type: 'ok', process: 1, f: 'read', key: 'k', value: 'a', modifyIndex: 5 })
  r.add({ type: 'invoke', process: 0, f: 'cas', key: 'k', from: 'a', to: 'b' })
  r.add({ type: 'info', process: 0, f: 'cas', key: 'k', error: 'timeout' })
  r.add({ type: 'invoke', process: 2, f: 'read', key: 'k' })
  r.add({ type: 'ok', process: 2, f: 'read', key: 'k', value: 'b', modifyIndex: 9 })
  return r.events
}

const text = () => serializeHistory({ seed: 1 }, sample())

test('a complete history round-trips', (t) => {
  const parsed = parseHistory(text())
  t.is(parsed.header.seed, 1)
  t.is(parsed.events.length, 8)
  t.deepEqual(parsed.ops.map((o) => `${o.f}:${o.status}`), ['write:ok', 'read:ok', 'cas:info', 'read:ok'])
  t.is(parsed.ops[2]!.complete, Infinity)
})

const refusals: [string, (s: string) => string, RegExp][] = [
  ['empty file', () => '', /is empty/],
  ['cut mid-line', (s) => s.slice(0, s.length - 30), /not valid JSON.*truncated/],
  ['cut at a line end (no end marker)', (s) => s.split('\n').slice(0, 5).join('\n') + '\n', /no end marker after 4 events.*truncated/],
  ['an event missing', (s) => s.split('\n').filter((_, i) => i !== 3).join('\n'), /end marker counts 8 events but the file holds 7/],
  ['no header', (s) => s.split('\n').slice(1).join('\n'), /first line must be the header/],
  ['garbage line', (s) => s.replace('"type":"ok"', '"type":"okay"'), /type must be one of invoke, ok, fail, info \(got "okay"\)/],
  ['a read without a value', (s) => s.replace(/"value":"a","modifyIndex":5/, '"modifyIndex":5'), /an ok read needs value/],
  ['time going backwards', (s) => s.replace('"time":3', '"time":-3'), /is before the previous event's/],
  ['content after the end', (s) => s + '{"type":"ok"}\n', /content after the end marker/],
]

for (const [name, mangle, expected] of refusals) {
  test(`refused: ${name}`, (t) => {
    const err = t.throws(() => parseHistory(mangle(text()), 'h.jsonl'), { instanceOf: HistoryError })
    t.regex(err.message, expected)
  })
}

test('pairing refuses impossible sequences', (t) => {
  const base = { f: 'read', key: 'k' } as const
  t.throws(() => pairOperations([{ ...base, type: 'ok', process: 0, time: 0, value: null }]), { message: /with no operation in flight/ })
  t.throws(() => pairOperations([{ ...base, type: 'invoke', process: 0, time: 0 }, { ...base, type: 'invoke', process: 0, time: 1 }]), { message: /had not completed/ })
  t.throws(() => pairOperations([{ ...base, type: 'invoke', process: 0, time: 0 }, { type: 'ok', f: 'write', key: 'k', process: 0, time: 1 }]), { message: /does not match the invoke/ })
  t.throws(() => pairOperations([{ ...base, type: 'invoke', process: 0, time: 0 }]), { message: /never completed/ })
  t.is(pairOperations([{ ...base, type: 'invoke', process: 0, time: 0 }], { allowPending: true })[0]!.status, 'info')
})

function runCheck(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHECK, file], (err, stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? -1 : 0, stdout, stderr }))
  })
}

test('check.ts: valid, invalid, truncated and missing files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'jepsen-history-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const good = join(dir, 'good.jsonl')
  await writeFile(good, text())
  let r = await runCheck(good)
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /linearizability: VALID/)

  // A stale read after the CAS's value was seen.
  const bad = join(dir, 'bad.jsonl')
  await writeFile(bad, serializeHistory({}, [...sample(), { type: 'invoke', process: 3, f: 'read', key: 'k', time: 100 }, { type: 'ok', process: 3, f: 'read', key: 'k', value: 'a', time: 101 }]))
  r = await runCheck(bad)
  t.is(r.code, 1)
  t.regex(r.stdout, /linearizability: INVALID/)
  t.regex(r.stdout, /smallest failing window/)

  const truncated = join(dir, 'truncated.jsonl')
  await writeFile(truncated, text().slice(0, 400))
  r = await runCheck(truncated)
  t.is(r.code, 3)
  t.regex(r.stderr, /^error: .*truncated\.jsonl:\d+: not valid JSON.*truncated/)
  t.notRegex(r.stdout, /VALID/)

  r = await runCheck(join(dir, 'nope.jsonl'))
  t.is(r.code, 3)
  t.regex(r.stderr, /cannot read .*nope\.jsonl: ENOENT/)
})
