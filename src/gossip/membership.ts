// Cluster membership and failure detection over libp2p: the IO loop around
// the SWIM core (swim.ts).
//
// Messages travel over a RaftTransport on its own protocol (/shoal/swim/1):
// one long-lived stream per peer, length-prefixed msgpack frames, the sender
// being the Noise-authenticated PeerId. A separate protocol means separate
// streams, so a ping never waits behind a Raft snapshot.
//
// Timing (defaults; tickMs = 100):
//   probe period        5 ticks = 500 ms   (probeTicks)
//   direct ack timeout  2 ticks = 200 ms   (probeTimeoutTicks), then k = 3 ping-reqs
//   suspicion timeout   min = max(2, 4.5 x log10 n) probe periods, max = 4 x min:
//                       n = 5: 1.6 s .. 6.4 s; n = 20: 3 s .. 12 s; n = 100: 4.5 s .. 18 s
//                       x 0.7 when we saw the member's connection close (n = 5: 1.2 s)
//   gossip push         every 200 ms to 3 members; each update sent 4 x ceil(log10(n+1)) times
//   probe period, probe timeout and suspicion timeouts x (1 + local health), local health in [0, 8]
// Why:
// - kill -9 closes the victim's sockets, libp2p reports the disconnect, and
//   every survivor probes the victim at once (hintUnreachable). The probes
//   fail within one period (0.5 s), all survivors suspect it, each sees the
//   others' suspicions (K = 3 confirmations for n = 5), so the timeout drops
//   to its hinted minimum of 1.2 s: dead everywhere after ~1.6-1.8 s.
// - SIGSTOP keeps the sockets open, so detection is plain probing: the first
//   survivor to probe the frozen node (4 survivors probe round-robin, so
//   within a few hundred ms) suspects it after one period; the others probe
//   the suspect in their next period and confirm, so it is dead 1.6 s after
//   the first suspicion: ~2.2-2.6 s in all (6.4 s without confirmations).
// - False deaths. A live node is declared dead only after staying silent
//   through a probe, three indirect probes and a second direct ping, and then
//   through the whole suspicion timeout although every message to it carries
//   the suspicion: at least ~2.1 s of total silence (the 1.6 s minimum
//   applies only with 3 independent confirmations; the unhinted minimum is
//   there for exactly this), more than the longest event-loop stall measured
//   on a 2-core machine saturated by CPU burners on top of other work (1.6 s;
//   typically < 0.6 s). A node whose own event loop stalls misses acks and
//   nacks, so its local health multiplier stretches its own timeouts before
//   it accuses anyone (Lifeguard). Ticks are never caught up after a stall: a
//   stalled node's clock simply pauses, and each tick runs after pending IO
//   (setImmediate), so acks that arrived during a stall are read before
//   their probe can time out.
// - The suspicion timeout grows with log10(n): larger clusters need more
//   gossip rounds for a refutation to reach everyone.
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { RaftTransport, type TransportLogger, type TransportStats } from '../raft/transport.ts'
import { Swim, type MemberStatus, type SwimConfig, type SwimStats } from './swim.ts'
import type { ShoalHost } from './host.ts'
import type { PeerId } from '@libp2p/interface'

export const SWIM_PROTOCOL = '/shoal/swim/1'
export const DEFAULT_TICK_MS = 100

export interface MemberEvent {
  id: string
  status: MemberStatus
  incarnation: number
  /** Status before; null when the member was not known. */
  previous: MemberStatus | null
  /** Wall-clock time of the change (ms since the epoch). */
  at: number
}

export interface MemberInfo {
  id: string
  status: MemberStatus
  incarnation: number
  /** When we last received a message from it (ms since the epoch); null if never. Now for ourselves. */
  lastSeen: number | null
  addrs?: string[]
  /** True for this node. */
  local?: boolean
}

export interface MembershipOptions extends Omit<SwimConfig, 'id' | 'members' | 'addrs' | 'random'> {
  /**
   * Our incarnation. Must exceed the one of any earlier run of this node;
   * default Date.now() (fine unless the clock goes back: persist a counter if
   * that matters).
   */
  incarnation?: number
  /** Milliseconds per core tick (default 100). */
  tickMs?: number
  /** libp2p protocol (default /shoal/swim/1). */
  protocol?: string
  /** Addresses to advertise to other members (default: the host's multiaddrs). */
  announce?: string[]
  /** Probe a member at once when its libp2p connection closes (default true). */
  hintOnDisconnect?: boolean
  logger?: TransportLogger
}

export interface MembershipStats extends SwimStats {
  localHealth: number
  incarnation: number
  /** Ticks that ran more than 2 tick intervals after the previous one (event-loop stalls). */
  lateTicks: number
  /** Longest gap between two ticks (ms). */
  maxTickGapMs: number
  transport: TransportStats
}

type Events = {
  member: [MemberEvent]
  alive: [MemberEvent]
  suspect: [MemberEvent]
  dead: [MemberEvent]
  left: [MemberEvent]
}

const stderrLogger: TransportLogger = {
  info: () => {},
  warn: (msg) => process.stderr.write(`${new Date().toISOString()} [WARN] swim: ${msg}\n`),
}

/** The transport speaks of "raft" streams; say "swim" in our logs. */
function swimLogger(log: TransportLogger): TransportLogger {
  const fix = (m: string): string => m.replace(/\braft (stream|sender|message|frame|transport)/g, 'swim $1')
  return { info: (m) => log.info(fix(m)), warn: (m) => log.warn(fix(m)) }
}

/**
 * Membership of this node in the cluster: emits `member` (and `alive`,
 * `suspect`, `dead`, `left`) with a MemberEvent whenever a member's status
 * changes, including ours when we leave.
 *
 *   const m = await Membership.create(host, { incarnation })
 *   m.on('member', (e) => ...)
 *   m.start()
 *   m.addPeer(peerId, addrs)        // seeds / known members; others are learned by gossip
 *   ...
 *   await m.leave(1000)             // graceful shutdown
 *   await m.stop()
 */
export class Membership extends EventEmitter<Events> {
  readonly host: ShoalHost
  readonly tickMs: number
  readonly core: Swim
  readonly #transport: RaftTransport
  readonly #log: TransportLogger
  readonly #hintOnDisconnect: boolean
  readonly #lastSeen = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #tickQueued = false
  #lastTickAt = 0
  #lateTicks = 0
  #maxTickGapMs = 0
  #started = false
  #stopped = false
  readonly #onDisconnect = (evt: CustomEvent<PeerId>): void => {
    if (!this.#hintOnDisconnect || this.#stopped) return
    this.core.hintUnreachable(evt.detail.toString())
    this.#flush()
  }

  constructor(host: ShoalHost, options: MembershipOptions = {}) {
    super()
    this.host = host
    this.tickMs = options.tickMs ?? DEFAULT_TICK_MS
    if (!(this.tickMs > 0)) throw new Error('membership: tickMs must be > 0')
    this.#log = swimLogger(options.logger ?? stderrLogger)
    this.#hintOnDisconnect = options.hintOnDisconnect ?? true
    const { tickMs: _t, protocol: _p, announce, hintOnDisconnect: _h, logger: _l, ...swim } = options
    this.core = new Swim({
      ...swim,
      id: host.peerId,
      incarnation: options.incarnation ?? Date.now(),
      addrs: announce ?? host.multiaddrs(),
      seed: options.seed ?? randomBytes(4).readUInt32LE(0),
    })
    this.#transport = new RaftTransport(host, {
      protocol: options.protocol ?? SWIM_PROTOCOL,
      logger: this.#log,
      // probes are small and stale ones useless: short queues, quick reconnects
      maxQueue: 256,
      maxQueueBytes: 4 * 1024 * 1024,
      maxFrameBytes: 4 * 1024 * 1024,
      dropPolicy: 'oldest',
      openTimeoutMs: 5_000,
      backoffMinMs: 50,
      backoffMaxMs: 1_000,
    })
    this.#transport.onMessage((from, message) => {
      if (this.#stopped) return
      this.#lastSeen.set(from, Date.now())
      this.core.step(from, message)
      this.#flush()
    })
  }

  /** Construct and register the protocol handler (messages are answered from now on; probing starts with start()). */
  static async create(host: ShoalHost, options: MembershipOptions = {}): Promise<Membership> {
    const m = new Membership(host, options)
    await m.#transport.start()
    m.#flush()
    return m
  }

  get id(): string {
    return this.host.peerId
  }

  get incarnation(): number {
    return this.core.incarnation
  }

  /** Start ticking: probing, gossip, suspicion timers. */
  start(): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    this.#lastTickAt = performance.now()
    this.#timer = setInterval(() => this.#onTimer(), this.tickMs)
    this.host.libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
  }

  /** Add (or re-add) a member, e.g. a seed or a member from replicated state. */
  addPeer(id: string, addrs: string[]): void {
    if (this.#stopped || id === this.host.peerId) return
    if (addrs.length > 0) this.#transport.setPeerAddresses(id, addrs)
    this.core.addMember(id)
    this.#flush()
  }

  /** Forget a member (it was removed from the cluster). */
  removePeer(id: string): void {
    this.core.removeMember(id)
    this.#transport.removePeer(id)
    this.#lastSeen.delete(id)
    this.#flush()
  }

  /** All known members, this node first. */
  members(): MemberInfo[] {
    const now = Date.now()
    return this.core.members().map((m) => ({
      id: m.id,
      status: m.status,
      incarnation: m.incarnation,
      lastSeen: m.local === true ? now : (this.#lastSeen.get(m.id) ?? null),
      ...(m.addrs === undefined ? {} : { addrs: m.addrs }),
      ...(m.local === true ? { local: true } : {}),
    }))
  }

  stats(): MembershipStats {
    return {
      ...this.core.stats(),
      localHealth: this.core.localHealth,
      incarnation: this.core.incarnation,
      lateTicks: this.#lateTicks,
      maxTickGapMs: Math.round(this.#maxTickGapMs),
      transport: this.#transport.stats(),
    }
  }

  /**
   * Leave gracefully: tell up to leaveFanout members directly (the rest learn
   * by gossip) and wait until they acknowledge or `timeoutMs` passes. Call
   * stop() afterwards.
   */
  async leave(timeoutMs = 1_000): Promise<{ sent: number; acked: number }> {
    if (this.#stopped) return { sent: 0, acked: 0 }
    this.core.leave()
    this.#flush()
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      const { sent, acked } = this.core.leaveStatus()
      if (acked >= sent) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return this.core.leaveStatus()
  }

  /** Stop ticking and close the streams (the host stays up). */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#timer)
    this.host.libp2p.removeEventListener('peer:disconnect', this.#onDisconnect)
    await this.#transport.close()
  }

  #onTimer(): void {
    if (this.#tickQueued) return
    this.#tickQueued = true
    // after the IO that is already pending: an ack that arrived while the
    // event loop was stalled is read before its probe can time out
    setImmediate(() => {
      this.#tickQueued = false
      if (this.#stopped) return
      const now = performance.now()
      const gap = now - this.#lastTickAt
      this.#lastTickAt = now
      if (gap > this.#maxTickGapMs) this.#maxTickGapMs = gap
      if (gap > 2 * this.tickMs) this.#lateTicks++
      this.core.tick()
      this.#flush()
    })
  }

  #flush(): void {
    if (!this.core.hasReady()) return
    const rd = this.core.ready()
    // addresses first, so that the messages below can dial
    for (const { id, addrs } of rd.addresses) {
      if (id !== this.host.peerId) this.#transport.setPeerAddresses(id, addrs)
    }
    for (const { to, message } of rd.messages) this.#transport.send(to, message)
    for (const e of rd.events) {
      const event: MemberEvent = { id: e.id, status: e.status, incarnation: e.incarnation, previous: e.previous, at: Date.now() }
      try {
        this.emit('member', event)
        this.emit(event.status, event)
      } catch (err) {
        this.#log.warn(`a membership listener threw: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
  }
}
