// Raft message transport over libp2p streams (protocol /shoal/raft/1).
//
// One long-lived, one-way stream per (sender, receiver) pair: each node writes
// the messages for a peer into its own outbound stream, and reads the messages
// from that peer from the peer's outbound stream (our inbound stream). Frames
// are varint-length-prefixed msgpackr documents. Delivery is best effort and
// in order per peer: Raft retries what is lost, so a full queue drops messages
// rather than blocking the caller.
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { decode, encode } from '../fsm/codec.ts'
import { toMultiaddr } from '../gossip/host.ts'
import { lazyWindowUpdates } from '../gossip/yamux-window.ts'
import type { ShoalHost } from '../gossip/host.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'

export const RAFT_PROTOCOL = '/shoal/raft/1'

export interface TransportLogger {
  info(msg: string): void
  warn(msg: string): void
}

export interface RaftTransportOptions {
  /** Messages queued per peer before dropping (default 16384). */
  maxQueue?: number
  /** Bytes queued per peer before dropping (default 64 MiB). */
  maxQueueBytes?: number
  /** Which message a full queue gives up: the oldest queued one (default) or the one being sent. */
  dropPolicy?: 'oldest' | 'newest'
  /** Largest accepted frame, both directions (default 64 MiB; snapshots travel as one message). */
  maxFrameBytes?: number
  /** Frames coalesced into one stream write (default 256 KiB). */
  maxBatchBytes?: number
  /** Opening a stream (dial + protocol negotiation) must finish within this (default 5000 ms). */
  openTimeoutMs?: number
  /** Reconnect backoff bounds (defaults 50 ms .. 2000 ms, doubling, with jitter). */
  backoffMinMs?: number
  backoffMaxMs?: number
  /** libp2p protocol id of the streams (default RAFT_PROTOCOL); lets another subsystem use its own streams. */
  protocol?: string
  logger?: TransportLogger
}

export interface TransportStats {
  /** Messages written into a stream. */
  sent: number
  /** Well-formed messages handed to the handlers. */
  received: number
  /** Messages given up: queue overflow, lost with a failed stream, unencodable, bad peer id, transport closed. */
  dropped: number
  /** Inbound frames that could not be decoded (or had an invalid length prefix). */
  malformed: number
  /** Outbound streams opened (one per peer unless streams fail). */
  streamsOpened: number
  /** Inbound streams accepted. */
  streamsAccepted: number
  /** Failed attempts to open an outbound stream. */
  openFailures: number
  /** Messages currently queued, over all peers. */
  queued: number
}

export type MessageHandler = (from: string, message: unknown) => void

type Counters = Omit<TransportStats, 'queued'>

const stderrLogger: TransportLogger = {
  info: () => {},
  warn: (msg) => process.stderr.write(`${new Date().toISOString()} [WARN] raft-transport: ${msg}\n`),
}

/** Thrown by the length decoder: the varint prefix is longer than any acceptable frame needs. */
class FrameLengthError extends Error {
  override name = 'FrameLengthError'
}

const INCOMPLETE_PREFIX = new RangeError('incomplete length prefix')

/**
 * A varint length decoder for lpStream that rejects over-long prefixes. The
 * default one throws RangeError ("need more bytes") for a run of continuation
 * bytes, so lpStream would keep reading, and re-decoding, one byte at a time
 * for as long as the peer keeps sending 0xff: a stalled stream at best.
 */
function lengthDecoder(maxFrameBytes: number): (data: { byteLength: number; get(index: number): number }) => number {
  let maxLengthBytes = 1
  while (128 ** maxLengthBytes <= maxFrameBytes) maxLengthBytes++
  return (data) => {
    // every frame of 128 bytes or more passes here once with its prefix incomplete:
    // a preallocated RangeError spares a stack trace each time (lpStream only checks the class)
    let value = 0
    let scale = 1
    for (let i = 0; i < data.byteLength; i++) {
      const byte = data.get(i)
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
      if (i + 1 >= maxLengthBytes) throw new FrameLengthError(`frame length prefix longer than ${maxLengthBytes} bytes`)
    }
    throw INCOMPLETE_PREFIX
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Outbound state for one peer: its queue, its stream and the pump that drains one into the other. */
class PeerLink {
  readonly id: string
  readonly peer: PeerId
  /** Encoded frames (msgpack, no length prefix); `head` is the index of the oldest. */
  queue: Uint8Array[] = []
  head = 0
  bytes = 0
  stream: Stream | undefined
  lp: LengthPrefixedStream<Stream> | undefined
  wake: PromiseWithResolvers<void> | undefined
  /** Pending peerStore update from setPeerAddresses, awaited before dialling. */
  addresses: Promise<void> = Promise.resolve()
  /** What setPeerAddresses said, re-recorded after failed attempts (the peer store ages addresses out after an hour). */
  known: Multiaddr[] = []
  failures = 0
  running = false
  removed = false

  constructor(id: string, peer: PeerId) {
    this.id = id
    this.peer = peer
  }

  get length(): number {
    return this.queue.length - this.head
  }

  push(frame: Uint8Array): void {
    this.queue.push(frame)
    this.bytes += frame.byteLength
  }

  shift(): Uint8Array | undefined {
    if (this.head >= this.queue.length) return undefined
    const frame = this.queue[this.head] as Uint8Array
    this.queue[this.head] = undefined as unknown as Uint8Array
    this.head++
    this.bytes -= frame.byteLength
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    return frame
  }

  clear(): number {
    const n = this.length
    this.queue = []
    this.head = 0
    this.bytes = 0
    return n
  }

  notify(): void {
    this.wake?.resolve()
  }
}

export class RaftTransport {
  readonly host: ShoalHost
  readonly #opts: Required<Omit<RaftTransportOptions, 'logger'>>
  readonly #log: TransportLogger
  readonly #links = new Map<string, PeerLink>()
  readonly #handlers: MessageHandler[] = []
  readonly #inbound = new Set<Stream>()
  readonly #counters: Counters = {
    sent: 0,
    received: 0,
    dropped: 0,
    malformed: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    openFailures: 0,
  }
  readonly #closing = new AbortController()
  #started = false

  constructor(host: ShoalHost, options: RaftTransportOptions = {}) {
    this.host = host
    this.#log = options.logger ?? stderrLogger
    this.#opts = {
      maxQueue: options.maxQueue ?? 16_384,
      maxQueueBytes: options.maxQueueBytes ?? 64 * 1024 * 1024,
      dropPolicy: options.dropPolicy ?? 'oldest',
      maxFrameBytes: options.maxFrameBytes ?? 64 * 1024 * 1024,
      maxBatchBytes: options.maxBatchBytes ?? 256 * 1024,
      openTimeoutMs: options.openTimeoutMs ?? 5_000,
      backoffMinMs: options.backoffMinMs ?? 50,
      backoffMaxMs: options.backoffMaxMs ?? 2_000,
      protocol: options.protocol ?? RAFT_PROTOCOL,
    }
  }

  /** Construct and start (register the protocol handler). */
  static async create(host: ShoalHost, options: RaftTransportOptions = {}): Promise<RaftTransport> {
    const t = new RaftTransport(host, options)
    await t.start()
    return t
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    await this.host.libp2p.handle(
      this.#opts.protocol,
      (stream, connection) => {
        void this.#readInbound(stream, connection)
      },
      { maxInboundStreams: 16, maxOutboundStreams: 16 },
    )
  }

  get localPeerId(): string {
    return this.host.peerId
  }

  onMessage(handler: MessageHandler): () => void {
    this.#handlers.push(handler)
    return () => {
      const i = this.#handlers.indexOf(handler)
      if (i >= 0) this.#handlers.splice(i, 1)
    }
  }

  /**
   * Teach the transport (via the libp2p peer store) where a peer listens, so
   * `send` can reach peers it has never been connected to. Accepts multiaddrs
   * (with or without a trailing /p2p/<peerId>) and host:port. Addresses often
   * come from replicated state, so bad input is logged and skipped, not
   * thrown: returns how many addresses were accepted.
   */
  setPeerAddresses(peerId: string, addresses: string[]): number {
    let peer: PeerId
    try {
      peer = peerIdFromString(peerId)
    } catch (err) {
      this.#log.warn(`ignoring addresses for invalid peer id ${JSON.stringify(peerId)}: ${describe(err)}`)
      return 0
    }
    const multiaddrs: Multiaddr[] = []
    for (const a of addresses) {
      try {
        const ma = toMultiaddr(a)
        const p2p = ma.getComponents().findLast((c) => c.name === 'p2p')
        if (p2p !== undefined && p2p.value !== peerId) throw new Error(`it belongs to ${p2p.value}`)
        multiaddrs.push(p2p === undefined ? ma : ma.decapsulateCode(p2p.code))
      } catch (err) {
        this.#log.warn(`ignoring address ${JSON.stringify(a)} for ${peerId}: ${(err as Error).message}`)
      }
    }
    if (multiaddrs.length === 0) return 0
    const link = this.#link(peerId, peer)
    link.known = multiaddrs
    this.#recordAddresses(link)
    return multiaddrs.length
  }

  #recordAddresses(link: PeerLink): void {
    const update = this.host.libp2p.peerStore.merge(link.peer, { multiaddrs: link.known }).then(
      () => {},
      (err: unknown) => this.#log.warn(`cannot record addresses of ${link.id}: ${describe(err)}`),
    )
    link.addresses = link.addresses.then(() => update)
  }

  /** Queue a message for a peer; never blocks or throws for delivery problems. */
  send(to: string, message: object): void {
    if (this.#closing.signal.aborted) {
      this.#counters.dropped++
      return
    }
    let frame: Uint8Array
    try {
      frame = encode(message)
    } catch (err) {
      this.#counters.dropped++
      this.#log.warn(`dropping unencodable message to ${to}: ${describe(err)}`)
      return
    }
    if (frame.byteLength > this.#opts.maxFrameBytes) {
      this.#counters.dropped++
      this.#log.warn(`dropping ${frame.byteLength}-byte message to ${to}: larger than ${this.#opts.maxFrameBytes} bytes`)
      return
    }
    if (to === this.host.peerId) {
      // loopback, asynchronously and through the codec like any other message
      this.#counters.sent++
      setImmediate(() => this.#deliver(to, frame))
      return
    }
    let link = this.#links.get(to)
    if (link === undefined) {
      let peer: PeerId
      try {
        peer = peerIdFromString(to)
      } catch {
        this.#counters.dropped++
        this.#log.warn(`dropping message to invalid peer id ${JSON.stringify(to)}`)
        return
      }
      link = this.#link(to, peer)
    }
    const { maxQueue, maxQueueBytes } = this.#opts
    if (
      this.#opts.dropPolicy === 'newest' &&
      (link.length >= maxQueue || link.bytes + frame.byteLength > maxQueueBytes)
    ) {
      this.#counters.dropped++
      return
    }
    link.push(frame)
    while (link.length > 1 && (link.length > maxQueue || link.bytes > maxQueueBytes)) {
      link.shift()
      this.#counters.dropped++
    }
    link.notify()
  }

  /**
   * Forget a peer (e.g. removed from the Raft configuration): drop its queue
   * and close its stream. A later send() starts afresh; addresses stay in the
   * peer store.
   */
  removePeer(peerId: string): void {
    const link = this.#links.get(peerId)
    if (link === undefined) return
    this.#links.delete(peerId)
    link.removed = true
    this.#counters.dropped += link.clear()
    link.notify()
    const stream = link.stream
    link.stream = undefined
    link.lp = undefined
    if (stream !== undefined && stream.status === 'open') {
      void stream.close({ signal: AbortSignal.timeout(1000) }).catch((err: unknown) => stream.abort(err as Error))
    }
  }

  stats(): TransportStats {
    let queued = 0
    for (const link of this.#links.values()) queued += link.length
    return { ...this.#counters, queued }
  }

  /** Per-peer view for diagnostics. */
  peerStats(peerId: string): { queued: number; queuedBytes: number; connected: boolean } | undefined {
    const link = this.#links.get(peerId)
    if (link === undefined) return undefined
    return { queued: link.length, queuedBytes: link.bytes, connected: link.stream?.status === 'open' }
  }

  /** Stop: drop queued messages, close outbound streams, abort inbound ones, unregister the protocol. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return
    this.#closing.abort()
    const closes: Promise<void>[] = []
    for (const link of this.#links.values()) {
      this.#counters.dropped += link.clear()
      link.notify()
      const stream = link.stream
      link.stream = undefined
      link.lp = undefined
      if (stream !== undefined && stream.status === 'open') {
        closes.push(
          stream.close({ signal: AbortSignal.timeout(1000) }).catch((err: unknown) => stream.abort(err as Error)),
        )
      }
    }
    for (const stream of this.#inbound) stream.abort(new Error('raft transport closed'))
    this.#inbound.clear()
    await Promise.all(closes)
    if (this.#started) {
      await this.host.libp2p.unhandle(this.#opts.protocol).catch(() => {})
    }
  }

  #link(id: string, peer: PeerId): PeerLink {
    let link = this.#links.get(id)
    if (link === undefined) {
      link = new PeerLink(id, peer)
      this.#links.set(id, link)
    }
    if (!link.running) {
      link.running = true
      void this.#pump(link)
        .catch((err: unknown) => this.#log.warn(`raft sender for ${id} stopped: ${describe(err)}`))
        .finally(() => {
          link.running = false
        })
    }
    return link
  }

  /** Drain a peer's queue into its stream, (re)opening the stream as needed. */
  async #pump(link: PeerLink): Promise<void> {
    const closing = this.#closing.signal
    while (!closing.aborted && !link.removed) {
      if (link.length === 0) {
        link.wake = Promise.withResolvers<void>()
        await link.wake.promise
        link.wake = undefined
        continue
      }
      const lp = link.lp !== undefined && link.stream?.writeStatus === 'writable' ? link.lp : await this.#open(link)
      if (lp === undefined) {
        // could not open: back off (a send() does not cut the wait short)
        const base = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffMinMs * 2 ** Math.min(link.failures - 1, 16))
        await sleep(base / 2 + Math.random() * (base / 2), closing)
        continue
      }
      if (link.length === 0 || link.removed) continue
      // pipelining: write everything queued (up to maxBatchBytes per write)
      // without waiting for the remote; only back-pressure (drain) pauses us
      const batch: Uint8Array[] = []
      let size = 0
      while (link.length > 0 && (batch.length === 0 || size < this.#opts.maxBatchBytes)) {
        const frame = link.shift() as Uint8Array
        batch.push(frame)
        size += frame.byteLength
      }
      try {
        await lp.writeV(batch, { signal: closing })
        this.#counters.sent += batch.length
      } catch (err) {
        this.#counters.dropped += batch.length
        if (!closing.aborted) {
          this.#log.warn(`raft stream to ${link.id} failed, ${batch.length} message(s) lost: ${describe(err)}`)
        }
        this.#discardStream(link, err)
      }
    }
  }

  async #open(link: PeerLink): Promise<LengthPrefixedStream<Stream> | undefined> {
    this.#discardStream(link)
    if (link.failures > 0 && link.known.length > 0) this.#recordAddresses(link)
    await link.addresses
    const signal = AbortSignal.any([AbortSignal.timeout(this.#opts.openTimeoutMs), this.#closing.signal])
    let stream: Stream
    try {
      stream = await this.host.libp2p.dialProtocol(link.peer, this.#opts.protocol, { signal })
    } catch (err) {
      if (this.#closing.signal.aborted) return undefined
      link.failures++
      this.#counters.openFailures++
      // first failure of a streak, then every 20th, to keep logs readable
      if (link.failures === 1 || link.failures % 20 === 0) {
        const msg = err instanceof Error && err.name === 'NoValidAddressesError'
          ? 'no known address (call setPeerAddresses)'
          : describe(err)
        this.#log.warn(`cannot open raft stream to ${link.id} (attempt ${link.failures}): ${msg}`)
      }
      return undefined
    }
    if (this.#closing.signal.aborted || link.removed) {
      stream.abort(new Error('raft transport closed'))
      return undefined
    }
    if (link.failures > 0) this.#log.info(`raft stream to ${link.id} re-established after ${link.failures} failed attempt(s)`)
    link.failures = 0
    this.#counters.streamsOpened++
    stream.addEventListener('close', () => {
      if (link.stream === stream) {
        link.stream = undefined
        link.lp = undefined
      }
    })
    link.stream = stream
    link.lp = lpStream(stream, { maxDataLength: this.#opts.maxFrameBytes })
    return link.lp
  }

  #discardStream(link: PeerLink, err?: unknown): void {
    const stream = link.stream
    link.stream = undefined
    link.lp = undefined
    if (stream !== undefined && stream.status === 'open') {
      stream.abort(err instanceof Error ? err : new Error('raft stream discarded'))
    }
  }

  async #readInbound(stream: Stream, connection: Connection): Promise<void> {
    // the sender is whoever authenticated the connection (Noise), never a message field
    const from = connection.remotePeer.toString()
    if (this.#closing.signal.aborted) {
      stream.abort(new Error('raft transport closed'))
      return
    }
    this.#counters.streamsAccepted++
    this.#inbound.add(stream)
    // many small frames: window updates at half a window, not one per frame
    lazyWindowUpdates(stream)
    const lp = lpStream(stream, {
      maxDataLength: this.#opts.maxFrameBytes,
      maxBufferSize: this.#opts.maxFrameBytes + 1024 * 1024,
      lengthDecoder: lengthDecoder(this.#opts.maxFrameBytes),
    })
    try {
      while (true) {
        let frame: Uint8Array
        try {
          frame = (await lp.read()).subarray()
        } catch (err) {
          const name = err instanceof Error ? err.name : ''
          if (
            name === 'FrameLengthError' ||
            name === 'InvalidDataLengthError' ||
            name === 'InvalidMessageLengthError' ||
            name === 'InvalidDataLengthLengthError'
          ) {
            // framing is lost: nothing after this can be trusted, so end the stream;
            // the sender opens a new one
            this.#counters.malformed++
            this.#log.warn(`malformed frame from ${from} (${describe(err)}); resetting its raft stream`)
            stream.abort(err as Error)
          } else if (name !== 'UnexpectedEOFError' && !this.#closing.signal.aborted && stream.status === 'open') {
            this.#log.warn(`raft stream from ${from} failed: ${describe(err)}`)
          }
          return
        }
        this.#deliver(from, frame)
      }
    } finally {
      this.#inbound.delete(stream)
      if (stream.status === 'open') {
        await stream.close({ signal: AbortSignal.timeout(1000) }).catch((err: unknown) => stream.abort(err as Error))
      }
    }
  }

  #deliver(from: string, frame: Uint8Array): void {
    let message: unknown
    try {
      message = decode<unknown>(frame)
    } catch (err) {
      this.#malformed(from, frame, describe(err))
      return
    }
    if (!isPlainObject(message)) {
      this.#malformed(from, frame, `decoded to ${Array.isArray(message) ? 'an array' : typeof message}, expected a map`)
      return
    }
    this.#counters.received++
    for (const handler of this.#handlers) {
      try {
        handler(from, message)
      } catch (err) {
        this.#log.warn(`raft message handler threw on a message from ${from}: ${describe(err)}`)
      }
    }
  }

  #malformed(from: string, frame: Uint8Array, reason: string): void {
    this.#counters.malformed++
    this.#log.warn(`dropping malformed ${frame.byteLength}-byte raft frame from ${from}: ${reason}`)
  }
}
