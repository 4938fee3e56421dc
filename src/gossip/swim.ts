// SWIM membership and failure detection (Das, Gupta, Motivala 2002) as a pure,
// deterministic core, with the cheap parts of Lifeguard (Dadgar et al. 2018).
//
// Like RaftCore, it performs no IO, reads no clock and uses only seeded
// randomness: time advances through tick(), peer input arrives through
// step(from, message) (`from` must be the authenticated sender), and output
// is collected with ready(). The IO layer (membership.ts) drives it.
//
// Protocol, per node:
// - Probing. Every probe period (probeTicks) the next member of a shuffled
//   round-robin list gets a `ping`. Without an `ack` after probeTimeoutTicks
//   the node re-sends the ping and asks `indirectChecks` (k) other alive
//   members to `ping-req` it; a helper pings the target and relays its ack, or
//   answers `nack` (Lifeguard) if the target stays silent. No ack by the end
//   of the period: the target becomes `suspect`.
// - Suspicion. A suspect that does not refute within the suspicion timeout is
//   declared `dead`. The timeout starts at max = suspicionMaxMult x min and
//   shrinks towards min = probeTicks x max(suspicionMinPeriods,
//   suspicionMult x log10(n)) as other members independently suspect the same
//   incarnation (Lifeguard: max - (max - min) x log(C + 1) / log(K + 1) for C
//   of K expected confirmations). Every probe period, besides the round-robin
//   target, each node also probes one suspect, so confirmations (or acks, and
//   the news reaching the suspect) come quickly.
// - Refutation. A node that hears it is suspect/dead/left at its current
//   incarnation bumps its incarnation and disseminates `alive`.
// - Dissemination. Updates (alive/suspect/dead/left + incarnation) are
//   piggybacked, up to maxPiggyback per message, on every ping/ack/ping-req/
//   nack, and pushed every gossipTicks to gossipFanout random members; each is
//   sent retransmitMult x ceil(log10(n + 1)) times, least-sent first. A message
//   to a member we consider suspect/dead/left always carries that verdict
//   (Lifeguard's "buddy system"), so the accused learns of it at once.
// - Precedence. Higher incarnation wins; at equal incarnation
//   alive < suspect < dead < left, so suspect overrides alive, and dead and
//   left are final for that incarnation: a node comes back only with a higher
//   one (a restarted node must start above its previous incarnation).
// - Local health (Lifeguard). A counter in [0, maxLocalHealth]: +1 when one of
//   our probes fails without the helpers' nacks (we may be the slow one), +1
//   per refutation, -1 per successful probe. Probe period, probe timeout and
//   suspicion timeouts are multiplied by (1 + localHealth): a node whose own
//   event loop stalls slows down before it accuses anyone.
// - Anti-entropy. `sync` carries the full member list: sent to a member we add
//   (push-pull join), to an unknown sender, every syncTicks to a random alive
//   member, and every reconnectTicks to a random dead one (heals partitions).
//   A `dead` learned through sync is only taken as `suspect`, so a stale view
//   never kills a live node outright.
// - Leave. leave() disseminates `left` and pings up to leaveFanout members
//   with it; their acks are counted (leaveStatus()).
// - Hints. hintUnreachable(id) (its connection closed) starts an extra probe
//   of that member right away, and a suspicion that follows a hint uses
//   bounds x hintedSuspicionFactor: a crashed process closes its sockets, a
//   stalled or frozen one does not, so only the latter needs the extra
//   tolerance.
// - Messages from a member we hold a verdict about, and stale verdicts about
//   ourselves, are answered directly (our verdict / our current incarnation),
//   so neither side depends on gossip retransmissions alone.
import { hashString, seededRandom, type Random } from '../raft/random.ts'

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left'

/** One piece of membership news. */
export interface SwimUpdate {
  id: string
  status: MemberStatus
  incarnation: number
  /** Who raised a suspect/dead verdict (counts as an independent confirmation). */
  from?: string
  /** The member's own advertised addresses (alive updates only). */
  addrs?: string[]
}

export type SwimMessage =
  | { type: 'ping'; seq: number; updates?: SwimUpdate[] }
  | { type: 'ack'; seq: number; updates?: SwimUpdate[] }
  | { type: 'nack'; seq: number; updates?: SwimUpdate[] }
  | { type: 'ping-req'; seq: number; target: string; updates?: SwimUpdate[] }
  | { type: 'gossip'; updates: SwimUpdate[] }
  | { type: 'sync'; reply: boolean; updates: SwimUpdate[] }

export interface SwimOutbound {
  to: string
  message: SwimMessage
}

/** A member's status changed (or it appeared). */
export interface SwimEvent {
  id: string
  status: MemberStatus
  incarnation: number
  /** Status before the change; null for a member we did not know. */
  previous: MemberStatus | null
  tick: number
}

export interface SwimReady {
  messages: SwimOutbound[]
  events: SwimEvent[]
  /** Members whose advertised addresses we learned or that changed. */
  addresses: Array<{ id: string; addrs: string[] }>
}

export interface SwimMember {
  id: string
  status: MemberStatus
  incarnation: number
  /** Tick of the last message from it (or an ack relayed for it); -1 if never. */
  lastHeardTick: number
  addrs?: string[]
  /** True for this node's own entry. */
  local?: boolean
}

export interface SwimStats {
  /** Messages dropped because they failed validation. */
  malformed: number
  /** Times this node refuted a suspicion about itself. */
  refutations: number
  probes: number
  /** Probes that ended without an ack (direct or relayed). */
  probeFailures: number
  /** Suspicions this node raised or confirmed from its own probes. */
  suspicions: number
  /** Dead verdicts this node declared (its suspicion timer expired). */
  declaredDead: number
  messagesSent: number
  updatesSent: number
}

export interface SwimConfig {
  /** This node's id (the PeerId string). */
  id: string
  /**
   * Starting incarnation. Must exceed any incarnation this node had before a
   * restart (persist it, or use a clock: Date.now()). Default 0.
   */
  incarnation?: number
  /** Addresses to advertise in our `alive` updates. */
  addrs?: string[]
  /** Initial members (as if passed to addMember). */
  members?: string[]
  /** Ticks per probe period. Default 5. */
  probeTicks?: number
  /** Ticks to wait for a direct ack before asking for indirect probes. Default 2. */
  probeTimeoutTicks?: number
  /** k: members asked to ping-req a silent target. Default 3. */
  indirectChecks?: number
  /** Suspicion min timeout = probe periods x max(suspicionMinPeriods, suspicionMult x log10(n)). Default 4.5. */
  suspicionMult?: number
  /** Floor of the min suspicion timeout in probe periods. Default 2. */
  suspicionMinPeriods?: number
  /** Max suspicion timeout (no confirmations) = this x min. Default 4. */
  suspicionMaxMult?: number
  /**
   * Both suspicion bounds are multiplied by this when we saw the member's
   * connection close (hintUnreachable) shortly before or during the
   * suspicion: a crashed process closes its sockets, a stalled one does not.
   * Default 0.7.
   */
  hintedSuspicionFactor?: number
  /** K: independent confirmations that bring the timeout down to min (capped at n - 2). Default 3. */
  suspicionConfirmations?: number
  /** Ticks between gossip pushes. Default 2. */
  gossipTicks?: number
  /** Members each gossip push goes to. Default 3. */
  gossipFanout?: number
  /** λ: each update is sent λ x ceil(log10(n + 1)) times. Default 4. */
  retransmitMult?: number
  /** Updates per message (sync excepted). Default 8. */
  maxPiggyback?: number
  /** Ticks between push-pull syncs with a random alive member (0 = never). Default 300. */
  syncTicks?: number
  /** Ticks between syncs offered to a random dead member (0 = never). Default 10. */
  reconnectTicks?: number
  /** Upper bound of the local health multiplier. Default 8. */
  maxLocalHealth?: number
  /** Members that get the `left` news directly on leave(). Default 5. */
  leaveFanout?: number
  /** Randomness for probe order and target choice. Default seededRandom(seed ?? hash(id)). */
  random?: Random
  seed?: number
}

const RANK: Record<MemberStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 }
const STATUSES = new Set<string>(['alive', 'suspect', 'dead', 'left'])
const MAX_ID_LENGTH = 256
const MAX_ADDRS = 32
const MAX_ADDR_LENGTH = 1024
const MAX_UPDATES = 16_384
const MAX_RELAYS = 1024
/** Largest incarnation accepted from the network: refuting it must still yield a safe integer. */
const MAX_INCARNATION = Number.MAX_SAFE_INTEGER - 1

interface Suspicion {
  start: number
  confirmers: Set<string>
}

interface MemberState {
  id: string
  status: MemberStatus
  incarnation: number
  lastHeardTick: number
  addrs?: string[]
  /** Who raised the current suspect/dead verdict. */
  from?: string
  suspicion?: Suspicion
  lastHintTick: number
  lastProbeTick: number
  /** Added by addMember and not heard from or about since: its incarnation (0) is a placeholder. */
  unconfirmed?: boolean
}

interface Probe {
  seq: number
  target: string
  start: number
  timeoutAt: number
  deadline: number
  indirect: boolean
  helpers: string[]
  nackers: Set<string>
}

interface Relay {
  requester: string
  requesterSeq: number
  target: string
  start: number
  nacked: boolean
}

interface Queued {
  update: SwimUpdate
  transmits: number
  order: number
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isIncarnation(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_INCARNATION
}

function parseUpdate(v: unknown): SwimUpdate | undefined {
  if (!isObject(v)) return undefined
  const { id, status, incarnation, from, addrs } = v
  if (!isId(id) || typeof status !== 'string' || !STATUSES.has(status) || !isIncarnation(incarnation)) return undefined
  const u: SwimUpdate = { id, status: status as MemberStatus, incarnation }
  if (from !== undefined && from !== null) {
    if (!isId(from)) return undefined
    u.from = from
  }
  if (addrs !== undefined && addrs !== null) {
    if (!Array.isArray(addrs) || addrs.length > MAX_ADDRS) return undefined
    if (!addrs.every((a) => typeof a === 'string' && a.length > 0 && a.length <= MAX_ADDR_LENGTH)) return undefined
    u.addrs = [...(addrs as string[])]
  }
  return u
}

function parseUpdates(v: unknown, required: boolean): SwimUpdate[] | undefined {
  if (v === undefined || v === null) return required ? undefined : []
  if (!Array.isArray(v) || v.length > MAX_UPDATES) return undefined
  const out: SwimUpdate[] = []
  for (const item of v) {
    const u = parseUpdate(item)
    if (u === undefined) return undefined
    out.push(u)
  }
  return out
}

/** Validate an untrusted message; undefined if malformed. */
export function parseSwimMessage(v: unknown): SwimMessage | undefined {
  if (!isObject(v)) return undefined
  const updates = parseUpdates(v.updates, v.type === 'gossip' || v.type === 'sync')
  if (updates === undefined) return undefined
  switch (v.type) {
    case 'ping':
    case 'ack':
    case 'nack':
      return isSeq(v.seq) ? { type: v.type, seq: v.seq, updates } : undefined
    case 'ping-req':
      return isSeq(v.seq) && isId(v.target) ? { type: 'ping-req', seq: v.seq, target: v.target, updates } : undefined
    case 'gossip':
      return { type: 'gossip', updates }
    case 'sync':
      return typeof v.reply === 'boolean' ? { type: 'sync', reply: v.reply, updates } : undefined
    default:
      return undefined
  }
}

/** Does (status, incarnation) take precedence over what we hold? */
export function overrides(current: { status: MemberStatus; incarnation: number }, status: MemberStatus, incarnation: number): boolean {
  return incarnation > current.incarnation || (incarnation === current.incarnation && RANK[status] > RANK[current.status])
}

function positiveInt(v: number | undefined, dflt: number, name: string, min = 1): number {
  const x = v ?? dflt
  if (!Number.isInteger(x) || x < min) throw new Error(`swim: ${name} must be an integer >= ${min}`)
  return x
}

export class Swim {
  readonly id: string
  readonly probeTicks: number
  readonly probeTimeoutTicks: number
  readonly indirectChecks: number
  readonly suspicionMult: number
  readonly suspicionMinPeriods: number
  readonly suspicionMaxMult: number
  readonly hintedSuspicionFactor: number
  readonly suspicionConfirmations: number
  readonly gossipTicks: number
  readonly gossipFanout: number
  readonly retransmitMult: number
  readonly maxPiggyback: number
  readonly syncTicks: number
  readonly reconnectTicks: number
  readonly maxLocalHealth: number
  readonly leaveFanout: number
  readonly #random: Random

  #now = 0
  #incarnation: number
  #addrs: string[] | undefined
  #left = false
  #localHealth = 0
  #seq = 0
  readonly #members = new Map<string, MemberState>()
  /** Members removed with removeMember: gossip at or below this incarnation does not bring them back. */
  readonly #removed = new Map<string, number>()
  readonly #probes = new Map<number, Probe>()
  readonly #relays = new Map<number, Relay>()
  #probeList: string[] = []
  #probeIndex = 0
  #nextProbeTick = 1
  #nextSyncTick: number
  #nextReconnectTick: number
  #queue: Queued[] = []
  #queueOrder = 0
  readonly #unknownSyncTick = new Map<string, number>()
  /** When we last sent a member our current incarnation because it had stale news about us. */
  readonly #toldSelf = new Map<string, number>()
  /** When we last sent a member our verdict about it because it talked to us. */
  readonly #toldVerdict = new Map<string, number>()
  readonly #leavePings = new Map<number, string>()
  readonly #leaveAcks = new Set<string>()

  #messages: SwimOutbound[] = []
  #events: SwimEvent[] = []
  #addresses = new Map<string, string[]>()

  readonly #stats: SwimStats = {
    malformed: 0,
    refutations: 0,
    probes: 0,
    probeFailures: 0,
    suspicions: 0,
    declaredDead: 0,
    messagesSent: 0,
    updatesSent: 0,
  }

  constructor(cfg: SwimConfig) {
    if (!isId(cfg.id)) throw new Error('swim: invalid node id')
    this.id = cfg.id
    const inc = cfg.incarnation ?? 0
    if (!isIncarnation(inc)) throw new Error('swim: incarnation must be a non-negative safe integer')
    this.#incarnation = inc
    this.#addrs = cfg.addrs === undefined ? undefined : [...cfg.addrs]
    this.probeTicks = positiveInt(cfg.probeTicks, 5, 'probeTicks', 2)
    this.probeTimeoutTicks = positiveInt(cfg.probeTimeoutTicks, 2, 'probeTimeoutTicks')
    if (this.probeTimeoutTicks >= this.probeTicks) throw new Error('swim: need probeTimeoutTicks < probeTicks')
    this.indirectChecks = positiveInt(cfg.indirectChecks, 3, 'indirectChecks', 0)
    this.suspicionMult = cfg.suspicionMult ?? 4.5
    this.suspicionMinPeriods = cfg.suspicionMinPeriods ?? 2
    this.suspicionMaxMult = cfg.suspicionMaxMult ?? 4
    this.hintedSuspicionFactor = cfg.hintedSuspicionFactor ?? 0.7
    if (!(this.suspicionMult > 0 && this.suspicionMinPeriods > 0 && this.suspicionMaxMult >= 1 &&
      this.hintedSuspicionFactor > 0 && this.hintedSuspicionFactor <= 1)) {
      throw new Error('swim: need suspicionMult > 0, suspicionMinPeriods > 0, suspicionMaxMult >= 1, 0 < hintedSuspicionFactor <= 1')
    }
    this.suspicionConfirmations = positiveInt(cfg.suspicionConfirmations, 3, 'suspicionConfirmations', 0)
    this.gossipTicks = positiveInt(cfg.gossipTicks, 2, 'gossipTicks')
    this.gossipFanout = positiveInt(cfg.gossipFanout, 3, 'gossipFanout', 0)
    this.retransmitMult = positiveInt(cfg.retransmitMult, 4, 'retransmitMult')
    this.maxPiggyback = positiveInt(cfg.maxPiggyback, 8, 'maxPiggyback')
    this.syncTicks = positiveInt(cfg.syncTicks, 300, 'syncTicks', 0)
    this.reconnectTicks = positiveInt(cfg.reconnectTicks, 10, 'reconnectTicks', 0)
    this.maxLocalHealth = positiveInt(cfg.maxLocalHealth, 8, 'maxLocalHealth', 0)
    this.leaveFanout = positiveInt(cfg.leaveFanout, 5, 'leaveFanout', 0)
    this.#random = cfg.random ?? seededRandom(cfg.seed ?? hashString(cfg.id))
    this.#nextSyncTick = this.syncTicks
    this.#nextReconnectTick = this.reconnectTicks
    // announce ourselves (with our addresses) to whoever we talk to first
    this.#enqueue(this.#selfUpdate())
    for (const m of cfg.members ?? []) this.addMember(m)
  }

  // -------------------------------------------------------------------------
  // Introspection

  /** Ticks so far. */
  get now(): number { return this.#now }
  get incarnation(): number { return this.#incarnation }
  get localHealth(): number { return this.#localHealth }
  get hasLeft(): boolean { return this.#left }

  stats(): SwimStats {
    return { ...this.#stats }
  }

  /** All known members, this node first (marked `local`). */
  members(): SwimMember[] {
    const out: SwimMember[] = [{
      id: this.id,
      status: this.#left ? 'left' : 'alive',
      incarnation: this.#incarnation,
      lastHeardTick: this.#now,
      ...(this.#addrs === undefined ? {} : { addrs: [...this.#addrs] }),
      local: true,
    }]
    for (const m of this.#members.values()) {
      out.push({
        id: m.id,
        status: m.status,
        incarnation: m.incarnation,
        lastHeardTick: m.lastHeardTick,
        ...(m.addrs === undefined ? {} : { addrs: [...m.addrs] }),
      })
    }
    return out
  }

  member(id: string): SwimMember | undefined {
    return this.members().find((m) => m.id === id)
  }

  /** Current suspicion timeout (ticks, local health included) for a suspect member; undefined if not suspect. */
  suspicionTimeout(id: string): number | undefined {
    const m = this.#members.get(id)
    return m?.suspicion === undefined ? undefined : this.#suspicionTimeout(m)
  }

  /** Progress of a leave(): pings sent with the `left` news and acks received. */
  leaveStatus(): { sent: number; acked: number } {
    return { sent: this.#leavePings.size, acked: this.#leaveAcks.size }
  }

  hasReady(): boolean {
    return this.#messages.length > 0 || this.#events.length > 0 || this.#addresses.size > 0
  }

  ready(): SwimReady {
    const rd: SwimReady = {
      messages: this.#messages,
      events: this.#events,
      addresses: [...this.#addresses].map(([id, addrs]) => ({ id, addrs })),
    }
    this.#messages = []
    this.#events = []
    this.#addresses = new Map()
    return rd
  }

  // -------------------------------------------------------------------------
  // Inputs

  /** Add a member we are told about (config, join). Presumed alive until probed; a no-op if known. */
  addMember(id: string): void {
    if (!isId(id) || id === this.id) return
    this.#removed.delete(id)
    if (this.#members.has(id)) return
    this.#insert(id, 'alive', 0, undefined).unconfirmed = true
    // push-pull: learn its incarnation and everyone it knows
    if (!this.#left) this.#send(id, { type: 'sync', reply: true, updates: this.#state() })
  }

  /** Forget a member (e.g. removed from the cluster). Gossip no newer than what we knew does not re-add it. */
  removeMember(id: string): void {
    const m = this.#members.get(id)
    if (m === undefined) return
    this.#members.delete(id)
    this.#removed.set(id, m.incarnation)
    for (const [seq, p] of this.#probes) if (p.target === id) this.#probes.delete(seq)
    this.#queue = this.#queue.filter((q) => q.update.id !== id)
    this.#addresses.delete(id)
  }

  /** The IO layer saw the member's connection close: probe it now (at most once per probe period). */
  hintUnreachable(id: string): void {
    const m = this.#members.get(id)
    if (this.#left || m === undefined || (m.status !== 'alive' && m.status !== 'suspect')) return
    if (m.lastHintTick >= 0 && this.#now - m.lastHintTick < this.probeTicks) return
    m.lastHintTick = this.#now
    if (this.#probing(id)) return
    this.#startProbe(id)
  }

  /** Leave gracefully: announce `left` (final for our incarnation) and stop probing. */
  leave(): void {
    if (this.#left) return
    this.#left = true
    this.#probes.clear()
    this.#relays.clear()
    for (const m of this.#members.values()) m.suspicion = undefined
    this.#queue = this.#queue.filter((q) => q.update.id !== this.id)
    this.#enqueue(this.#selfUpdate())
    this.#events.push({ id: this.id, status: 'left', incarnation: this.#incarnation, previous: 'alive', tick: this.#now })
    const targets = this.#pick(this.leaveFanout, (m) => m.status === 'alive' || m.status === 'suspect')
    for (const to of targets) {
      const seq = ++this.#seq
      this.#leavePings.set(seq, to)
      this.#send(to, { type: 'ping', seq })
    }
  }

  /** Advance time by one tick. */
  tick(): void {
    this.#now++
    const now = this.#now
    if (!this.#left) {
      this.#checkProbes()
      this.#checkRelays()
      this.#checkSuspicions()
      if (now >= this.#nextProbeTick) {
        const scale = this.#localHealth + 1
        this.#nextProbeTick = now + this.probeTicks * scale
        const target = this.#nextProbeTarget()
        if (target !== undefined) this.#startProbe(target)
        // and one suspect per period on top: we either confirm the suspicion
        // (faster detection) or our ping carries the news to it (faster refutation)
        const suspect = this.#nextSuspectToProbe()
        if (suspect !== undefined) this.#startProbe(suspect)
      }
      if (this.syncTicks > 0 && now >= this.#nextSyncTick) {
        this.#nextSyncTick = now + this.syncTicks
        const [to] = this.#pick(1, (m) => m.status === 'alive')
        if (to !== undefined) this.#send(to, { type: 'sync', reply: true, updates: this.#state() })
      }
      if (this.reconnectTicks > 0 && now >= this.#nextReconnectTick) {
        this.#nextReconnectTick = now + this.reconnectTicks
        const [to] = this.#pick(1, (m) => m.status === 'dead')
        if (to !== undefined) this.#send(to, { type: 'sync', reply: true, updates: this.#state() })
      }
    }
    if (now % this.gossipTicks === 0 && this.#queue.length > 0) {
      const targets = this.#pick(this.gossipFanout, (m) => m.status === 'alive' || m.status === 'suspect')
      for (const to of targets) {
        const updates = this.#piggyback(to)
        if (updates.length > 0) this.#send(to, { type: 'gossip', updates }, false)
      }
    }
    if (now % 100 === 0) {
      this.#unknownSyncTick.clear()
      this.#toldSelf.clear()
      this.#toldVerdict.clear()
    }
  }

  /**
   * A message from `from` (the authenticated sender). Malformed messages are
   * counted and dropped; this never throws for bad input.
   */
  step(from: string, raw: unknown): void {
    const msg = isId(from) ? parseSwimMessage(raw) : undefined
    if (msg === undefined) {
      this.#stats.malformed++
      return
    }
    if (from === this.id) return
    const sender = this.#members.get(from)
    if (sender !== undefined) {
      sender.lastHeardTick = this.#now
      sender.unconfirmed = undefined
      if (sender.status === 'dead' || sender.status === 'left') {
        // it talks, so our own verdict about it should not spread further; the
        // reply carries the verdict to it (see #piggyback) so it can refute
        this.#queue = this.#queue.filter((q) => !(q.update.id === from && q.update.status === 'dead'))
      }
    }
    const viaSync = msg.type === 'sync'
    for (const u of msg.updates ?? []) this.#apply(u, from, viaSync)
    const known = this.#members.get(from)
    if (known === undefined && !this.#removed.has(from) && !(msg.type === 'sync' && !msg.reply)) {
      // a stranger: ask for its state (which includes itself), at most once per probe period
      const last = this.#unknownSyncTick.get(from)
      if (last === undefined || this.#now - last >= this.probeTicks) {
        this.#unknownSyncTick.set(from, this.#now)
        this.#send(from, { type: 'sync', reply: true, updates: this.#state() })
      }
    }

    if (known !== undefined && known.status !== 'alive' && msg.type !== 'ping' && !(msg.type === 'sync' && msg.reply)) {
      // it talks but we hold a verdict about it: tell it (a ping's ack and a
      // sync reply carry the verdict anyway), so it refutes or corrects us
      const last = this.#toldVerdict.get(from)
      if (last === undefined || this.#now - last >= this.probeTimeoutTicks) {
        this.#toldVerdict.set(from, this.#now)
        this.#send(from, { type: 'gossip', updates: this.#piggyback(from) }, false)
      }
    }

    switch (msg.type) {
      case 'ping':
        this.#send(from, { type: 'ack', seq: msg.seq })
        break
      case 'ping-req':
        this.#onPingReq(from, msg.seq, msg.target)
        break
      case 'ack':
        this.#onAck(from, msg.seq)
        break
      case 'nack': {
        const p = this.#probes.get(msg.seq)
        if (p !== undefined && p.helpers.includes(from)) p.nackers.add(from)
        break
      }
      case 'sync':
        if (msg.reply) this.#send(from, { type: 'sync', reply: false, updates: this.#state() })
        break
      case 'gossip':
        break
    }
  }

  // -------------------------------------------------------------------------
  // Probing

  #probing(id: string): boolean {
    for (const p of this.#probes.values()) if (p.target === id) return true
    return false
  }

  #probeable(id: string): boolean {
    const m = this.#members.get(id)
    return m !== undefined && (m.status === 'alive' || m.status === 'suspect') && !this.#probing(id)
  }

  #nextProbeTarget(): string | undefined {
    for (let pass = 0; pass < 2; pass++) {
      while (this.#probeIndex < this.#probeList.length) {
        const id = this.#probeList[this.#probeIndex++] as string
        if (this.#probeable(id)) return id
      }
      // a full round: reshuffle
      this.#probeList = this.#shuffle([...this.#members.keys()])
      this.#probeIndex = 0
    }
    return undefined
  }

  #nextSuspectToProbe(): string | undefined {
    let best: MemberState | undefined
    for (const m of this.#members.values()) {
      if (m.status !== 'suspect' || this.#probing(m.id)) continue
      if (best === undefined || m.lastProbeTick < best.lastProbeTick) best = m
    }
    return best?.id
  }

  #startProbe(target: string): void {
    const m = this.#members.get(target)
    if (m !== undefined) m.lastProbeTick = this.#now
    const scale = this.#localHealth + 1
    const seq = ++this.#seq
    this.#probes.set(seq, {
      seq,
      target,
      start: this.#now,
      timeoutAt: this.#now + this.probeTimeoutTicks * scale,
      deadline: this.#now + this.probeTicks * scale,
      indirect: false,
      helpers: [],
      nackers: new Set(),
    })
    this.#stats.probes++
    this.#send(target, { type: 'ping', seq })
  }

  #checkProbes(): void {
    for (const p of [...this.#probes.values()]) {
      const m = this.#members.get(p.target)
      if (m === undefined || m.status === 'dead' || m.status === 'left') {
        this.#probes.delete(p.seq)
        continue
      }
      if (!p.indirect && this.#now >= p.timeoutAt) {
        p.indirect = true
        p.helpers = this.#pick(this.indirectChecks, (h) => h.status === 'alive' && h.id !== p.target)
        for (const h of p.helpers) this.#send(h, { type: 'ping-req', seq: p.seq, target: p.target })
        // a second direct attempt costs one message and survives one lost ping
        this.#send(p.target, { type: 'ping', seq: p.seq })
      }
      if (this.#now >= p.deadline) {
        this.#probes.delete(p.seq)
        this.#probeFailed(p, m)
      }
    }
  }

  #probeFailed(p: Probe, m: MemberState): void {
    this.#stats.probeFailures++
    // Lifeguard: helpers that did not even nack suggest that we are the slow one
    const missing = p.helpers.length > 0 ? p.helpers.length - p.nackers.size : 1
    this.#adjustHealth(missing)
    if (m.status === 'alive') {
      this.#stats.suspicions++
      this.#setStatus(m, 'suspect', m.incarnation, this.id)
      this.#enqueue({ id: m.id, status: 'suspect', incarnation: m.incarnation, from: this.id })
    } else if (m.status === 'suspect' && m.suspicion !== undefined && !m.suspicion.confirmers.has(this.id)) {
      this.#stats.suspicions++
      m.suspicion.confirmers.add(this.id)
      this.#enqueue({ id: m.id, status: 'suspect', incarnation: m.incarnation, from: this.id })
    }
  }

  #onAck(from: string, seq: number): void {
    const relay = this.#relays.get(seq)
    if (relay !== undefined) {
      if (from !== relay.target) return
      this.#relays.delete(seq)
      this.#send(relay.requester, { type: 'ack', seq: relay.requesterSeq })
      return
    }
    const leaving = this.#leavePings.get(seq)
    if (leaving !== undefined) {
      if (leaving === from) this.#leaveAcks.add(from)
      return
    }
    const p = this.#probes.get(seq)
    if (p === undefined || (from !== p.target && !p.helpers.includes(from))) return
    this.#probes.delete(seq)
    this.#adjustHealth(-1)
    const m = this.#members.get(p.target)
    if (m !== undefined) m.lastHeardTick = this.#now
  }

  #onPingReq(from: string, seq: number, target: string): void {
    if (this.#left) return
    if (target === this.id) {
      this.#send(from, { type: 'ack', seq })
      return
    }
    if (this.#relays.size >= MAX_RELAYS) return
    const local = ++this.#seq
    this.#relays.set(local, { requester: from, requesterSeq: seq, target, start: this.#now, nacked: false })
    this.#send(target, { type: 'ping', seq: local })
  }

  #checkRelays(): void {
    for (const [seq, r] of this.#relays) {
      const age = this.#now - r.start
      if (!r.nacked && age >= this.probeTimeoutTicks) {
        r.nacked = true
        this.#send(r.requester, { type: 'nack', seq: r.requesterSeq })
      }
      // keep forwarding a late ack for a while: the requester's period may be stretched
      if (age >= this.probeTicks * 2) this.#relays.delete(seq)
    }
  }

  #adjustHealth(delta: number): void {
    this.#localHealth = Math.min(this.maxLocalHealth, Math.max(0, this.#localHealth + delta))
  }

  // -------------------------------------------------------------------------
  // Suspicion

  /** Members that count for n: alive or suspect, this node included. */
  #liveCount(): number {
    let n = 1
    for (const m of this.#members.values()) if (m.status === 'alive' || m.status === 'suspect') n++
    return n
  }

  /** [min, max] suspicion timeout in ticks, before local health scaling. */
  suspicionBounds(n = this.#liveCount(), hinted = false): { min: number; max: number } {
    const periods = Math.max(this.suspicionMinPeriods, this.suspicionMult * Math.log10(Math.max(1, n)))
    const min = Math.ceil(this.probeTicks * periods)
    const max = Math.ceil(min * this.suspicionMaxMult)
    if (!hinted) return { min, max }
    return { min: Math.ceil(min * this.hintedSuspicionFactor), max: Math.ceil(max * this.hintedSuspicionFactor) }
  }

  #suspicionTimeout(m: MemberState): number {
    const s = m.suspicion as Suspicion
    const n = this.#liveCount()
    // its connection closed shortly before (or since) the suspicion began
    const hinted = m.lastHintTick >= 0 && m.lastHintTick >= s.start - 2 * this.probeTicks * (this.#localHealth + 1)
    const { min, max } = this.suspicionBounds(n, hinted)
    const k = Math.min(this.suspicionConfirmations, n - 2)
    let timeout = min
    if (k >= 1) {
      const c = Math.max(0, s.confirmers.size - 1)
      const frac = Math.min(1, Math.log(c + 1) / Math.log(k + 1))
      timeout = Math.max(min, Math.floor(max - (max - min) * frac))
    }
    return timeout * (this.#localHealth + 1)
  }

  #checkSuspicions(): void {
    for (const m of this.#members.values()) {
      if (m.status !== 'suspect' || m.suspicion === undefined) continue
      if (this.#now - m.suspicion.start < this.#suspicionTimeout(m)) continue
      this.#stats.declaredDead++
      this.#setStatus(m, 'dead', m.incarnation, this.id)
      this.#enqueue({ id: m.id, status: 'dead', incarnation: m.incarnation, from: this.id })
    }
  }

  // -------------------------------------------------------------------------
  // Membership state

  #selfUpdate(): SwimUpdate {
    const u: SwimUpdate = { id: this.id, status: this.#left ? 'left' : 'alive', incarnation: this.#incarnation }
    if (!this.#left && this.#addrs !== undefined) u.addrs = [...this.#addrs]
    return u
  }

  #updateOf(m: MemberState): SwimUpdate {
    const u: SwimUpdate = { id: m.id, status: m.status, incarnation: m.incarnation }
    if (m.from !== undefined && (m.status === 'suspect' || m.status === 'dead')) u.from = m.from
    if (m.status === 'alive' && m.addrs !== undefined) u.addrs = [...m.addrs]
    return u
  }

  /** Full state for a sync: ourselves first. */
  #state(): SwimUpdate[] {
    const out = [this.#selfUpdate()]
    // not members we were merely told about: others would probe them without an address
    for (const m of this.#members.values()) if (m.unconfirmed !== true) out.push(this.#updateOf(m))
    return out
  }

  #insert(id: string, status: MemberStatus, incarnation: number, addrs: string[] | undefined): MemberState {
    const m: MemberState = { id, status, incarnation, lastHeardTick: -1, lastHintTick: -1, lastProbeTick: -1 }
    if (addrs !== undefined) {
      m.addrs = addrs
      this.#addresses.set(id, [...addrs])
    }
    this.#members.set(id, m)
    // SWIM: a new member goes to a random place in the rest of the current round
    const at = this.#probeIndex + Math.floor(this.#random() * (this.#probeList.length - this.#probeIndex + 1))
    this.#probeList.splice(at, 0, id)
    this.#events.push({ id, status, incarnation, previous: null, tick: this.#now })
    return m
  }

  #setStatus(m: MemberState, status: MemberStatus, incarnation: number, from: string | undefined): void {
    const previous = m.status
    m.status = status
    m.incarnation = incarnation
    m.from = status === 'suspect' || status === 'dead' ? from : undefined
    if (status === 'suspect') {
      m.suspicion = { start: this.#now, confirmers: new Set(from === undefined ? [] : [from]) }
    } else {
      m.suspicion = undefined
    }
    if (previous !== status) this.#events.push({ id: m.id, status, incarnation, previous, tick: this.#now })
  }

  #apply(u: SwimUpdate, via: string, viaSync: boolean): void {
    if (u.id === this.id) {
      this.#aboutSelf(u, via)
      return
    }
    const m = this.#members.get(u.id)
    if (m !== undefined) m.unconfirmed = undefined
    if (m === undefined) {
      // only a live member is worth adding; verdicts about strangers are ignored
      if (u.status !== 'alive') return
      const removedAt = this.#removed.get(u.id)
      if (removedAt !== undefined && u.incarnation <= removedAt) return
      this.#removed.delete(u.id)
      this.#insert(u.id, 'alive', u.incarnation, u.addrs)
      this.#enqueue(u)
      return
    }
    // a full state may be stale: a `dead` from it only makes us suspect (and probe)
    const status: MemberStatus = viaSync && u.status === 'dead' ? 'suspect' : u.status
    const from = status === 'suspect' || status === 'dead' ? (viaSync && u.status === 'dead' ? via : (u.from ?? via)) : undefined
    if (!overrides(m, status, u.incarnation)) {
      // the same suspicion from someone else: an independent confirmation
      if (status === 'suspect' && m.status === 'suspect' && u.incarnation === m.incarnation &&
        m.suspicion !== undefined && from !== undefined && !m.suspicion.confirmers.has(from)) {
        m.suspicion.confirmers.add(from)
        this.#enqueue({ id: m.id, status: 'suspect', incarnation: m.incarnation, from })
      }
      return
    }
    this.#setStatus(m, status, u.incarnation, from)
    if (status === 'alive' && u.addrs !== undefined && !sameList(u.addrs, m.addrs)) {
      m.addrs = [...u.addrs]
      this.#addresses.set(m.id, [...u.addrs])
    }
    this.#enqueue(this.#updateOf(m))
  }

  #aboutSelf(u: SwimUpdate, via: string): void {
    if (this.#left) return
    if (u.status === 'alive') {
      // an announcement from a previous life with a higher incarnation: overtake it
      if (u.incarnation > this.#incarnation) this.#refute(u.incarnation)
      return
    }
    if (u.incarnation < this.#incarnation) {
      // we already refuted this, but the sender has not heard: tell it directly
      // (the refutation's retransmissions may all have gone elsewhere)
      const last = this.#toldSelf.get(via)
      if (last === undefined || this.#now - last >= this.probeTimeoutTicks) {
        this.#toldSelf.set(via, this.#now)
        this.#send(via, { type: 'gossip', updates: [this.#selfUpdate()] }, false)
      }
      return
    }
    this.#adjustHealth(1)
    this.#refute(u.incarnation)
  }

  #refute(seen: number): void {
    this.#incarnation = Math.max(this.#incarnation, seen) + 1
    this.#stats.refutations++
    this.#queue = this.#queue.filter((q) => q.update.id !== this.id)
    this.#enqueue(this.#selfUpdate())
  }

  // -------------------------------------------------------------------------
  // Dissemination

  #retransmitLimit(): number {
    return this.retransmitMult * Math.max(1, Math.ceil(Math.log10(this.#members.size + 2)))
  }

  /**
   * Queue an update for dissemination. Older news about the same member is
   * dropped; only suspicions of the same incarnation from different accusers
   * coexist (each is a confirmation).
   */
  #enqueue(u: SwimUpdate): void {
    this.#queue = this.#queue.filter((q) => {
      const o = q.update
      if (o.id !== u.id) return true
      return o.status === 'suspect' && u.status === 'suspect' && o.incarnation === u.incarnation && o.from !== u.from
    })
    this.#queue.push({ update: u, transmits: 0, order: this.#queueOrder++ })
  }

  /** Updates to attach to a message for `to`: the verdict about `to` first, then the least-sent news. */
  #piggyback(to: string): SwimUpdate[] {
    const out: SwimUpdate[] = []
    if (this.#left) out.push(this.#selfUpdate())
    const about = this.#members.get(to)
    if (about !== undefined && about.status !== 'alive') out.push(this.#updateOf(about))
    if (this.#queue.length === 0) return out
    const limit = this.#retransmitLimit()
    const candidates = this.#queue
      .filter((q) => !(q.update.id === to && (q.update.status === 'alive' || about?.status !== 'alive')))
      .filter((q) => !(this.#left && q.update.id === this.id))
      .sort((a, b) => a.transmits - b.transmits || b.order - a.order)
    let spent = false
    for (const q of candidates) {
      if (out.length >= this.maxPiggyback) break
      out.push(q.update)
      q.transmits++
      if (q.transmits >= limit) spent = true
    }
    if (spent) this.#queue = this.#queue.filter((q) => q.transmits < limit)
    return out
  }

  #send(to: string, message: SwimMessage, attach = true): void {
    if (attach && message.type !== 'gossip' && message.type !== 'sync') {
      const updates = this.#piggyback(to)
      if (updates.length > 0) message.updates = updates
    }
    this.#stats.messagesSent++
    this.#stats.updatesSent += message.updates?.length ?? 0
    this.#messages.push({ to, message })
  }

  // -------------------------------------------------------------------------
  // Randomness

  #shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1))
      const tmp = xs[i] as T
      xs[i] = xs[j] as T
      xs[j] = tmp
    }
    return xs
  }

  /** Up to `k` random members matching `filter`. */
  #pick(k: number, filter: (m: MemberState) => boolean): string[] {
    if (k <= 0) return []
    const ids: string[] = []
    for (const m of this.#members.values()) if (filter(m)) ids.push(m.id)
    return this.#shuffle(ids).slice(0, k)
  }
}

function sameList(a: string[] | undefined, b: string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.length === b.length && a.every((x, i) => x === b[i])
}
