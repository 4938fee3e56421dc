// The libp2p host every Shoal agent runs: TCP + (optional pnet cluster key) +
// Noise + Yamux, with identify, ping and gossipsub services.
import { isIP } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { DEFAULT_P2P_PORT } from '../agent/defaults.ts'
import { VERSION } from '../version.ts'
import { normalizeClusterKey } from './cluster-key.ts'
import { coalesceWrites, socketOf } from './coalesce-writes.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { noiseCrypto } from './noise-crypto.ts'
import { cheaperNoiseFraming } from './noise-framing.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Connection, ConnectionProtector, Libp2p, PeerId } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { TCPSocketOptions } from '@libp2p/tcp'
import type { Multiaddr } from '@multiformats/multiaddr'

export type ShoalServices = {
  identify: Identify
  ping: Ping
  /** Gossipsub, tuned for small clusters; for the membership layer. */
  pubsub: GossipSub
}

export type ShoalLibp2p = Libp2p<ShoalServices>

export interface HostOptions {
  /** Where `node-key` lives (created on first start). */
  dataDir: string
  /** Address to listen on, e.g. "0.0.0.0" or "127.0.0.31". */
  listenHost: string
  /** TCP port; 0 = any free port. */
  listenPort: number
  /** Cluster pre-shared key (key file text/bytes or the raw 32 bytes). Without it the host runs an open network. */
  clusterKey?: Uint8Array | string
  /** Addresses to advertise instead of the listen addresses (multiaddrs or host:port). */
  announce?: string[]
  /** Upper bound for `dial()` (default 5000 ms). */
  dialTimeoutMs?: number
  /** Once TCP is connected, the security handshake must finish within this (default 2000 ms). */
  handshakeTimeoutMs?: number
}

export const DEFAULT_DIAL_TIMEOUT_MS = 5_000
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2_000

export interface DialResult {
  /** The authenticated PeerId of the remote node. */
  peerId: string
  connection: Connection
}

export class HostDialError extends Error {
  override name = 'HostDialError'
  readonly target: string
  /** `unreachable`: no TCP connection; `cluster-key`: the private-network handshake failed; `other`. */
  readonly kind: 'unreachable' | 'cluster-key' | 'timeout' | 'self' | 'other'
  constructor(target: string, kind: HostDialError['kind'], message: string, cause?: unknown) {
    super(message, { cause })
    this.target = target
    this.kind = kind
  }
}

/** The pnet nonce exchange failed or stalled: the peer is not on this private network. */
export class ClusterKeyHandshakeError extends Error {
  override name = 'ClusterKeyHandshakeError'
}

/**
 * pnet's protector with its own deadline. pnet only applies its 1 s nonce
 * timeout when the upgrader passes no abort signal, and the upgrader always
 * passes the dial's, so a peer that never sends the 24-byte nonce (a node
 * without a cluster key sends a 20-byte multistream header and then waits for
 * us) would hold the dial until the overall dial timeout.
 */
function clusterKeyProtector(psk: Uint8Array, timeoutMs: number): () => ConnectionProtector {
  const inner = preSharedKey({ psk })()
  return () => ({
    async protect(connection, options) {
      const deadline = AbortSignal.timeout(timeoutMs)
      const signal = options?.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline])
      try {
        return await inner.protect(connection, { ...options, signal })
      } catch (err) {
        if (options?.signal?.aborted === true && !deadline.aborted) throw err
        const why = deadline.aborted ? `no nonce within ${timeoutMs} ms` : (err as Error).message
        throw new ClusterKeyHandshakeError(`private-network handshake failed: ${why}`, { cause: err })
      }
    },
  })
}

/** Gossipsub parameters for a cluster of a handful of agents, possibly on one host. */
export function gossipsubService(): ReturnType<typeof gossipsub> {
  return gossipsub({
    D: 4,
    Dlo: 2,
    Dhi: 6,
    Dout: 1,
    Dlazy: 4,
    heartbeatInterval: 250,
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    scoreParams: {
      // all agents of a test cluster (or several per machine) share one IP
      IPColocationFactorWeight: 0,
    },
  })
}

/**
 * Convert a dial target to a multiaddr: multiaddrs ("/ip4/...") pass through;
 * "host:port" and "[v6]:port" become /ip4|ip6|dns/<host>/tcp/<port>; a host
 * alone ("10.0.0.1", "node-1.lan", "[::1]") takes `defaultPort` when given.
 */
export function toMultiaddr(target: string, defaultPort?: number): Multiaddr {
  const t = target.trim()
  if (t.startsWith('/')) {
    try {
      return multiaddr(t)
    } catch (err) {
      throw new Error(`invalid peer address ${JSON.stringify(target)}: ${(err as Error).message}`, { cause: err })
    }
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(t)
  const port = m === null ? NaN : m[3] === undefined ? defaultPort ?? NaN : Number(m[3])
  if (m === null || !(port >= 1 && port <= 65535)) {
    throw new Error(`invalid peer address ${JSON.stringify(target)}: expected ${defaultPort === undefined ? 'host:port' : 'host[:port]'} or a multiaddr`)
  }
  const host = (m[1] ?? m[2]) as string
  const family = isIP(host)
  if (m[1] !== undefined && family !== 6) {
    throw new Error(`invalid peer address ${JSON.stringify(target)}: [${host}] is not an IPv6 address`)
  }
  const proto = family === 4 ? 'ip4' : family === 6 ? 'ip6' : 'dns'
  return multiaddr(`/${proto}/${host}/tcp/${port}`)
}

function listenAddr(host: string, port: number): string {
  const family = isIP(host)
  if (family === 0) throw new Error(`invalid listen address ${JSON.stringify(host)}: expected an IP address`)
  return `/${family === 6 ? 'ip6' : 'ip4'}/${host}/tcp/${port}`
}

function errorChain(err: unknown): Error[] {
  const out: Error[] = []
  const seen = new Set<unknown>()
  const walk = (e: unknown): void => {
    if (!(e instanceof Error) || seen.has(e)) return
    seen.add(e)
    out.push(e)
    if (e instanceof AggregateError) for (const inner of e.errors) walk(inner)
    walk(e.cause)
  }
  walk(err)
  return out
}

export class ShoalHost {
  readonly peerId: string
  readonly libp2p: ShoalLibp2p
  readonly hasClusterKey: boolean
  readonly dialTimeoutMs: number
  readonly handshakeTimeoutMs: number

  constructor(libp2p: ShoalLibp2p, options: { hasClusterKey: boolean; dialTimeoutMs: number; handshakeTimeoutMs: number }) {
    this.libp2p = libp2p
    this.peerId = libp2p.peerId.toString()
    this.hasClusterKey = options.hasClusterKey
    this.dialTimeoutMs = options.dialTimeoutMs
    this.handshakeTimeoutMs = options.handshakeTimeoutMs
  }

  /** Listen (or announce) addresses, each ending in /p2p/<peerId>. */
  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((ma) => ma.toString())
  }

  /**
   * Connect to a peer by multiaddr, host:port or host (the default p2p port). Resolves with the remote's
   * authenticated PeerId; rejects with a HostDialError whose message starts
   * with `cannot reach peer <target>: ` (unreachable, timeout) or mentions
   * `cluster key mismatch`.
   */
  async dial(target: string, options: { timeoutMs?: number } = {}): Promise<DialResult> {
    const ma = toMultiaddr(target, DEFAULT_P2P_PORT)
    const timeoutMs = options.timeoutMs ?? this.dialTimeoutMs
    const handshakeTimeoutMs = Math.min(this.handshakeTimeoutMs, timeoutMs)
    const handshakeDeadline = new AbortController()
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), handshakeDeadline.signal])
    // progress events tell how far the dial got: 'upgrader:encrypt-outbound-connection'
    // means TCP connected and the pnet nonce exchange (if any) completed. With
    // mismatched keys the peers then exchange garbage and may both wait for
    // more of it, so the rest of the handshake gets a tighter deadline.
    let handshakeStarted = false
    let timer: NodeJS.Timeout | undefined
    try {
      const connection = await this.libp2p.dial(ma, {
        signal,
        onProgress: (evt) => {
          if (evt.type === 'upgrader:encrypt-outbound-connection' && !handshakeStarted) {
            handshakeStarted = true
            timer = setTimeout(() => handshakeDeadline.abort(), handshakeTimeoutMs)
          }
        },
      })
      return { peerId: connection.remotePeer.toString(), connection }
    } catch (err) {
      throw this.translateDialError(target, err, {
        timedOut: signal.aborted,
        timeoutMs: handshakeDeadline.signal.aborted ? handshakeTimeoutMs : timeoutMs,
        handshakeStarted,
      })
    } finally {
      clearTimeout(timer)
    }
  }

  /** Round-trip time in ms to a peer given by PeerId string, multiaddr or host:port. */
  async ping(target: string, options: { timeoutMs?: number } = {}): Promise<number> {
    const signal = AbortSignal.timeout(options.timeoutMs ?? this.dialTimeoutMs)
    const peer: PeerId | Multiaddr = target.startsWith('/') || target.includes(':')
      ? toMultiaddr(target)
      : peerIdFromString(target)
    return this.libp2p.services.ping.ping(peer, { signal })
  }

  /**
   * Turn a libp2p dial failure into a HostDialError.
   *
   * How a cluster key (pnet) mismatch shows up: pnet first swaps 24-byte nonces
   * in clear, so that part succeeds between any two pnet nodes; from then on
   * each side XORs its bytes with a different key stream, so the
   * multistream-select header that precedes Noise arrives as garbage. The side
   * that reads garbage usually rejects it and resets the TCP connection, so the
   * dialer sees EncryptionFailedError("read ECONNRESET") a few ms into the
   * handshake; about half the time the garbage parses as the length of a long
   * message instead and both sides wait for more bytes, which only the
   * handshake deadline ends. Between a pnet node and one without a key the
   * nonce exchange itself fails (reset, or a stall that clusterKeyProtector's
   * deadline ends with ClusterKeyHandshakeError). No error says "wrong key", so:
   * any failure after the TCP connection was established and before the
   * connection was upgraded is reported as a cluster key mismatch, and failures
   * to connect at all ("connection error host:port: ECONNREFUSED", timeouts
   * before the handshake) as "cannot reach peer".
   */
  translateDialError(
    target: string,
    err: unknown,
    how: { timedOut: boolean; timeoutMs: number; handshakeStarted: boolean },
  ): HostDialError {
    const chain = errorChain(err)
    const names = new Set(chain.map((e) => e.name))
    const reason = chain.map((e) => e.message).find((m) => m !== '') ?? String(err)
    if (names.has('InvalidPeerIdError') && chain.some((e) => /dial self/i.test(e.message))) {
      return new HostDialError(target, 'self', `cannot reach peer ${target}: that address is this node`, err)
    }
    if (names.has('UnexpectedPeerError') || chain.some((e) => /does not match expected remote identity|unexpected peer/i.test(e.message))) {
      return new HostDialError(
        target,
        'other',
        `cannot reach peer ${target}: the node at that address has a different node id [${reason}]`,
        err,
      )
    }
    const connectFailed = chain.some((e) => e.message.startsWith('connection error '))
    const resetDuringUpgrade =
      !connectFailed &&
      (names.has('ClusterKeyHandshakeError') ||
        names.has('EncryptionFailedError') ||
        names.has('UnexpectedEOFError') ||
        chain.some((e) => ['ECONNRESET', 'EPIPE'].includes((e as NodeJS.ErrnoException).code ?? '')))
    if (how.handshakeStarted || resetDuringUpgrade) {
      const detail = this.hasClusterKey
        ? 'the peer accepted the TCP connection but the private-network handshake failed: it uses a different --cluster-key-file, or none, or it is not a Shoal agent'
        : 'the peer accepted the TCP connection but refused the handshake: it probably requires a cluster key (--cluster-key-file), or it is not a Shoal agent'
      const why = how.timedOut ? `no handshake within ${how.timeoutMs} ms` : reason
      return new HostDialError(target, 'cluster-key', `cannot join peer ${target}: cluster key mismatch (${detail}) [${why}]`, err)
    }
    if (how.timedOut) {
      return new HostDialError(target, 'timeout', `cannot reach peer ${target}: no answer within ${how.timeoutMs} ms`, err)
    }
    return new HostDialError(target, connectFailed ? 'unreachable' : 'other', `cannot reach peer ${target}: ${reason}`, err)
  }

  async stop(): Promise<void> {
    await this.libp2p.stop()
  }
}

function bindsSpecificAddress(host: string): boolean {
  return host !== '' && host !== '0.0.0.0' && host !== '::' && isIP(host) !== 0
}

export async function createHost(options: HostOptions): Promise<ShoalHost> {
  const identity = await loadOrCreateIdentity(options.dataDir)
  const psk = options.clusterKey === undefined ? undefined : normalizeClusterKey(options.clusterKey)
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
  const libp2p = await createLibp2p<ShoalServices>({
    start: false,
    privateKey: identity.privateKey,
    nodeInfo: { name: 'shoal', version: VERSION, userAgent: `shoal/${VERSION}` },
    addresses: {
      listen: [listenAddr(options.listenHost, options.listenPort)],
      announce: options.announce?.map((a) => toMultiaddr(a, options.listenPort || undefined).toString()),
    },
    // Dial from our own address (as a separate machine would), not the
    // kernel's pick: on one host that makes per-node firewall rules possible.
    transports: [tcp(bindsSpecificAddress(options.listenHost) ? { dialOpts: { localAddress: options.listenHost } as TCPSocketOptions } : {})],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    ...(psk === undefined ? {} : { connectionProtector: clusterKeyProtector(psk, handshakeTimeoutMs) }),
    connectionManager: {
      dialTimeout: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      addressDialTimeout: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      inboundUpgradeTimeout: 5_000,
      // agents of a cluster are few and trusted; the defaults (5 connections/s
      // per IP, 10 pending upgrades) are tuned for the public DHT and throttle
      // several agents sharing a host
      inboundConnectionThreshold: 100,
      maxIncomingPendingConnections: 64,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'],
    },
    // detect dead connections (and so dead Raft streams) within ~5-10 s
    connectionMonitor: { pingInterval: 5_000 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsubService(),
    },
  })
  libp2p.addEventListener('connection:open', (evt) => {
    const socket = socketOf(evt.detail)
    if (socket) coalesceWrites(socket)
    cheaperNoiseFraming(evt.detail)
  })
  try {
    await libp2p.start()
  } catch (err) {
    try {
      await libp2p.stop()
    } catch {
      // nothing more to release
    }
    const m = /listen (E[A-Z]+): ([^\n]*?)(?: \d+\.\d+\.\d+\.\d+[:\d]*)?\n/.exec((err as Error).message)
    const where = `${options.listenHost}:${options.listenPort}`
    throw new Error(m === null ? `cannot listen on ${where}: ${(err as Error).message}` : `cannot listen on ${where}: ${m[2]} (${m[1]})`, {
      cause: err,
    })
  }
  return new ShoalHost(libp2p, {
    hasClusterKey: psk !== undefined,
    dialTimeoutMs: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
    handshakeTimeoutMs,
  })
}
