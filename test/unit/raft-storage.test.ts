import test from 'ava'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { encode } from '../../src/fsm/codec.ts'
import { RaftStorage } from '../../src/raft/storage.ts'
import type { Entry } from '../../src/raft/types.ts'

const e = (index: number, term: number, text = `${index}@${term}`): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(text) })

async function open(t: { teardown: (f: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-raftlog-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return { dir, path: join(dir, 'raft') }
}

test('entries and hard state survive a reopen', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [e(1, 1), e(2, 1), e(3, 2)], hardState: { term: 2, vote: 'b', commit: 2 } })
  await s.close()
  const again = await RaftStorage.open(path)
  const loaded = await again.load()
  t.deepEqual(loaded.hardState, { term: 2, vote: 'b', commit: 2 })
  t.deepEqual(loaded.entries.map((x) => [x.index, x.term]), [[1, 1], [2, 1], [3, 2]])
  t.deepEqual(Buffer.from(loaded.entries[2]!.data).toString(), '3@2')
  t.is(again.lastIndex, 3)
  await again.close()
})

test('entries of every type load back as saved, after entries an earlier version stored as msgpack', async (t) => {
  const { path } = await open(t)
  const old = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await old.put(`e/${'1'.padStart(16, '0')}`, encode(e(1, 1, 'stored by 0.1')))
  await old.put('hs', encode({ term: 1, vote: 'a', commit: 1 }))
  await old.close()
  const s = await RaftStorage.open(path)
  const saved: Entry[] = [
    { index: 2, term: 2, type: 'noop', data: new Uint8Array(0) },
    { index: 3, term: 2, type: 'confChange', data: encode({ type: 'addLearner', nodeId: 'b' }) },
    { index: 4, term: 2 ** 40, type: 'normal', data: new Uint8Array(300).fill(7) },
  ]
  await s.save({ entries: saved })
  await s.close()
  const again = await RaftStorage.open(path)
  const loaded = (await again.load()).entries.map((x) => ({ ...x, data: Buffer.from(x.data) }))
  t.deepEqual(loaded, [e(1, 1, 'stored by 0.1'), ...saved].map((x) => ({ ...x, data: Buffer.from(x.data) })))
  await again.close()
})

test('a conflicting shorter suffix truncates the old tail', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [1, 2, 3, 4, 5].map((i) => e(i, 1)) })
  await s.save({ entries: [e(3, 2)] })
  t.deepEqual((await s.load()).entries.map((x) => [x.index, x.term]), [[1, 1], [2, 1], [3, 2]])
  await s.close()
  const again = await RaftStorage.open(path)
  t.is(again.lastIndex, 3)
  await again.close()
})

test('an installed snapshot replaces the whole log; later entries follow it', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [1, 2, 3].map((i) => e(i, 1)) })
  await s.save({ snapshot: { meta: { index: 10, term: 3, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array([7]) }, entries: [e(11, 3)] })
  await s.close()
  const again = await RaftStorage.open(path)
  const loaded = await again.load()
  t.is(loaded.snapshot?.meta.index, 10)
  t.deepEqual([...loaded.snapshot!.data], [7])
  t.deepEqual(loaded.entries.map((x) => x.index), [11])
  t.is(again.firstIndex, 11)
  await again.close()
})

test('compaction drops entries covered by the snapshot and keeps the rest', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [1, 2, 3, 4, 5].map((i) => e(i, 1)) })
  await s.compact({ meta: { index: 3, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array() })
  t.deepEqual((await s.load()).entries.map((x) => x.index), [4, 5])
  await s.close()
  const again = await RaftStorage.open(path)
  t.is(again.firstIndex, 4)
  t.is(again.lastIndex, 5)
  t.deepEqual((await again.load()).entries.map((x) => x.index), [4, 5])
  await again.close()
})

test('a gap in the log is refused', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [e(1, 1)] })
  await t.throwsAsync(s.save({ entries: [e(3, 1)] }), { message: /gap before entry 3/ })
  await s.close()
})

test('a commit-only hard state rides with the next batch (a kill -9 before it keeps the older commit); close writes it', async (t) => {
  const { dir, path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [e(1, 1), e(2, 1), e(3, 1)], hardState: { term: 1, vote: 'a', commit: 1 } })
  await s.save({ entries: [], hardState: { term: 1, vote: 'a', commit: 3 } })
  t.deepEqual((await s.load()).hardState, { term: 1, vote: 'a', commit: 3 }, 'the storage answers with the newest hard state')
  // What a kill -9 now leaves on disk: a copy of the files of the open database.
  const crashed = async (name: string) => {
    await cp(path, join(dir, name), { recursive: true })
    const c = await RaftStorage.open(join(dir, name))
    const hs = (await c.load()).hardState
    await c.close()
    return hs
  }
  t.deepEqual(await crashed('kill1'), { term: 1, vote: 'a', commit: 1 }, 'the commit-only change was not written by itself')
  await s.save({ entries: [e(4, 1)] })
  t.deepEqual(await crashed('kill2'), { term: 1, vote: 'a', commit: 3 }, 'the next batch carried it')
  await s.save({ entries: [], hardState: { term: 1, vote: 'a', commit: 4 } })
  await s.close()
  const again = await RaftStorage.open(path)
  t.deepEqual((await again.load()).hardState, { term: 1, vote: 'a', commit: 4 })
  await again.close()
})

test('a new term or vote is written at once, with or without entries', async (t) => {
  const { dir, path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [], hardState: { term: 2, vote: 'b', commit: 0 } })
  await cp(path, join(dir, 'kill'), { recursive: true })
  const c = await RaftStorage.open(join(dir, 'kill'))
  t.deepEqual((await c.load()).hardState, { term: 2, vote: 'b', commit: 0 })
  await c.close()
  await s.close()
})

test('a commit index that waited is written by saveCommit, unsynced; nothing else changes', async (t) => {
  const { dir, path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: [e(1, 1), e(2, 1)], hardState: { term: 1, vote: 'a', commit: 1 } })
  t.is(s.commitUnsavedMs(), 0, 'nothing waits')
  await s.save({ entries: [], hardState: { term: 1, vote: 'a', commit: 2 } })
  const waited = s.commitUnsavedMs(Date.now() + 1_500)
  t.true(waited >= 1_500, `${waited} ms`)
  await s.saveCommit()
  t.is(s.commitUnsavedMs(), 0)
  await s.saveCommit() // nothing to write: a no-op
  // Reopened without close(): only what saveCommit wrote can carry commit 2.
  const copy = join(dir, 'copy')
  await cp(path, copy, { recursive: true })
  const c = await RaftStorage.open(copy)
  const loaded = await c.load()
  t.deepEqual(loaded.hardState, { term: 1, vote: 'a', commit: 2 })
  t.deepEqual(loaded.entries.map((x) => x.index), [1, 2])
  await c.close()
  await s.close()
})

test('a crash after a snapshot was stored but before the entries it covers were deleted: they are ignored, and the next compaction deletes them', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: Array.from({ length: 10 }, (_, i) => e(i + 1, 1)) })
  await s.close()
  // What compact() leaves if killed between its two steps: the snapshot, and every entry still there.
  const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.put('snap', encode({ meta: { index: 6, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array([1]) }))
  await db.close()
  const again = await RaftStorage.open(path)
  const loaded = await again.load()
  t.is(loaded.snapshot?.meta.index, 6)
  t.deepEqual(loaded.entries.map((x) => x.index), [7, 8, 9, 10], 'entries the snapshot covers are not replayed')
  await again.compact({ meta: { index: 8, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array([2]) })
  await again.close()
  const keys = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const left: string[] = []
  for await (const k of keys.keys({ gte: 'e/', lt: 'e0' })) left.push(k)
  await keys.close()
  t.deepEqual(left.map((k) => Number(k.slice(2))), [9, 10], 'the leftovers went with the next compaction')
})

test('a snapshot installed from the leader waits for a compaction in progress: the newer snapshot stays', async (t) => {
  const { path } = await open(t)
  const s = await RaftStorage.open(path)
  await s.save({ entries: Array.from({ length: 10 }, (_, i) => e(i + 1, 1)) })
  const conf = { voters: ['a'], learners: [] }
  const compaction = s.compact({ meta: { index: 5, term: 1, conf }, data: new Uint8Array([5]) })
  await s.save({ entries: [], snapshot: { meta: { index: 20, term: 2, conf }, data: new Uint8Array([20]) } })
  await compaction
  t.is(s.snapshot?.meta.index, 20)
  await s.close()
  const again = await RaftStorage.open(path)
  const loaded = await again.load()
  t.is(loaded.snapshot?.meta.index, 20)
  t.deepEqual(loaded.entries, [])
  t.is(again.lastIndex, 20)
  await again.close()
})
