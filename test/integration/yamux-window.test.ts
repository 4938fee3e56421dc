// Yamux window updates at half a window on real libp2p hosts (TCP + Noise + Yamux).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { createHost, type ShoalHost } from '../../src/gossip/host.ts'
import { lazyWindowUpdates } from '../../src/gossip/yamux-window.ts'
import type { Stream } from '@libp2p/interface'

async function host(t: ExecutionContext, listenHost: string): Promise<ShoalHost> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-yamux-'))
  const h = await createHost({ dataDir, listenHost, listenPort: 0 })
  t.teardown(async () => {
    await h.stop()
    await rm(dataDir, { recursive: true, force: true })
  })
  return h
}

const sendWindow = (s: Stream) => (s as unknown as { sendWindowCapacity: number }).sendWindowCapacity

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

test('small frames get no window update each; the window is replenished at half; every byte arrives in order', async (t) => {
  const a = await host(t, '127.0.6.236')
  const b = await host(t, '127.0.6.237')
  const received: Uint8Array[] = []
  let inbound: Stream | undefined
  await b.libp2p.handle('/shoal/test-window/1', (stream) => {
    inbound = stream
    t.true(lazyWindowUpdates(stream))
    stream.addEventListener('message', (evt) => received.push((evt as unknown as { data: { subarray(): Uint8Array } }).data.subarray()))
  })
  await a.dial(b.multiaddrs()[0]!)
  const out = await a.libp2p.dialProtocol(b.libp2p.peerId, '/shoal/test-window/1')
  const full = sendWindow(out)
  const bytes = () => received.reduce((n, r) => n + r.byteLength, 0)
  const chunk = (i: number) => new Uint8Array(1000).fill(i % 256)
  let sent = 0
  for (let i = 0; i < 20; i++, sent += 1000) out.send(chunk(i))
  await until('20 small frames', () => bytes() === sent)
  await new Promise((r) => setTimeout(r, 100))
  t.is(sendWindow(out), full - sent, 'no window update for 20 KB of small frames')
  // past half a window the receiver tops the window up again
  for (let i = 20; i < 300; i++, sent += 1000) {
    if (!out.send(chunk(i))) await new Promise((r) => out.addEventListener('drain', r, { once: true }))
  }
  await until('300 KB', () => bytes() === sent)
  const recv = inbound as unknown as { recvWindow: number; recvWindowCapacity: number }
  await until('both ends to agree on the window', () => sendWindow(out) === recv.recvWindowCapacity)
  t.true(sendWindow(out) > full - sent, 'the receiver sent window updates')
  t.true(sendWindow(out) * 2 >= recv.recvWindow - 2 * 1000, `the sender keeps about half a window at least (${sendWindow(out)} of ${recv.recvWindow})`)
  const all = Buffer.concat(received)
  for (let i = 0; i < 300; i++) t.is(all[i * 1000 + 999], i % 256)
})
