import test from 'ava'
import { SnapshotAssembler, splitSnapshot, type SnapshotChunk } from '../../src/raft/snapshot-chunks.ts'
import type { InstallSnapshotMessage } from '../../src/raft/types.ts'

function message(bytes: number): InstallSnapshotMessage {
  const data = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) data[i] = (i * 31) & 0xff
  return { type: 'installSnapshot', from: 'a', to: 'b', term: 3, snapshot: { meta: { index: 40, term: 2, conf: { voters: ['a', 'b'], learners: [] } }, data } }
}

test('a snapshot split into chunks reassembles to the same message', (t) => {
  const m = message(1000)
  const chunks = splitSnapshot(m, 300)
  t.is(chunks.length, 4)
  const a = new SnapshotAssembler()
  const out = chunks.map((c) => a.accept('a', structuredClone(c)))
  t.deepEqual(out.slice(0, 3), [null, null, null])
  t.deepEqual(out[3], m)
})

test('an empty snapshot is one chunk', (t) => {
  const m = message(0)
  const chunks = splitSnapshot(m)
  t.is(chunks.length, 1)
  t.deepEqual(new SnapshotAssembler().accept('a', chunks[0]!), m)
})

test('a gap, a foreign chunk or a spoofed sender abandons the transfer; a fresh start succeeds', (t) => {
  const chunks = splitSnapshot(message(1000), 300)
  const a = new SnapshotAssembler()
  a.accept('a', chunks[0]!)
  t.is(a.accept('a', chunks[2]!), null, 'gap')
  t.is(a.accept('a', chunks[3]!), null)
  t.is(a.accept('x', chunks[0]!), null, 'chunk claiming another sender')
  t.is(a.accept('a', { ...chunks[1]!, seq: -1 } as SnapshotChunk), null, 'malformed')
  t.true(a.dropped >= 3)
  let last = null
  for (const c of chunks) last = a.accept('a', c)
  t.truthy(last)
})

test('transfers from different peers do not mix', (t) => {
  const ma = message(700)
  const mb = { ...message(500), from: 'c' }
  const ca = splitSnapshot(ma, 300)
  const cb = splitSnapshot(mb, 300)
  const a = new SnapshotAssembler()
  a.accept('a', ca[0]!)
  a.accept('c', cb[0]!)
  a.accept('a', ca[1]!)
  t.deepEqual(a.accept('c', cb[1]!), mb)
  t.deepEqual(a.accept('a', ca[2]!), ma)
})
