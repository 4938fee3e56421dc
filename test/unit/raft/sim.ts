// Deterministic cluster simulator for the Raft core.
//
// Everything (network delays, drops, duplicates, crashes, election timeouts)
// is derived from one seed, so a failing run can be replayed exactly. Nodes
// follow the Ready contract: entries/hard state/snapshot are written to a
// per-node "durable" store before messages leave; a crash throws away the core
// and the volatile state machine, and a restart rebuilds both from the store.
//
// Safety invariants are checked continuously (see checkInvariants) and any
// violation throws a SimError carrying the recent event trace.

import {
  RaftCore, decodeConfChange, hashString, seededRandom,
  type ConfChange, type Entry, type HardState, type Message, type NodeId, type ProposeResult, type RaftConfig,
  type Random, type Ready, type ReadState, type Snapshot,
} from '../../../src/raft/index.ts'

export interface NetConfig {
  /** Probability a message is lost. */
  drop: number
  /** Probability a message is delivered twice. */
  duplicate: number
  /** Delivery delay in steps, uniform in [minDelay, maxDelay]; > 1 spread reorders. */
  minDelay: number
  maxDelay: number
}

export interface SimConfig {
  seed: number
  voters: NodeId[]
  learners?: NodeId[]
  /** Nodes started empty that can later be added to the cluster. */
  spares?: NodeId[]
  electionTick?: number
  heartbeatTick?: number
  preVote?: boolean
  checkQuorum?: boolean
  maxInflight?: number
  maxSizePerMsg?: number
  /** Network steps per clock tick (network latency is a fraction of a tick). */
  stepsPerTick?: number
  net?: Partial<NetConfig>
  /** Application snapshots every N applied entries (0 = never). */
  compactEvery?: number
  /** Probability that a node crashes in the middle of handling a Ready (churn). */
  crashInReady?: number
  /** Serialize every message through msgpackr-like structured cloning. */
  cloneMessages?: boolean
}

export class SimError extends Error {}

interface Durable {
  hardState: HardState
  entries: Entry[]
  snapshot: Snapshot | null
}

interface StateMachine {
  index: number
  hash: number
  values: string[]
}

export class SimNode {
  readonly id: NodeId
  readonly founder: boolean
  core: RaftCore | null = null
  durable: Durable = { hardState: { term: 0, vote: null, commit: 0 }, entries: [], snapshot: null }
  sm: StateMachine = { index: 0, hash: 0, values: [] }
  checkedCommit = 0
  readStates: ReadState[] = []
  restarts = 0

  constructor(id: NodeId, founder: boolean) {
    this.id = id
    this.founder = founder
  }

  get up(): boolean {
    return this.core !== null
  }
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export function entryKey(e: Entry): string {
  return `${e.term}|${e.type}|${dec.decode(e.data)}`
}

function encodeSm(sm: StateMachine): Uint8Array {
  return enc.encode(JSON.stringify(sm))
}

function decodeSm(s: Snapshot): StateMachine {
  if (s.data.byteLength === 0) return { index: s.meta.index, hash: 0, values: [] } // genesis
  const v = JSON.parse(dec.decode(s.data)) as StateMachine
  if (v.index !== s.meta.index) throw new SimError(`snapshot data index ${v.index} != meta index ${s.meta.index}`)
  return v
}

export class Sim {
  readonly cfg: SimConfig
  readonly rng: Random
  readonly nodes = new Map<NodeId, SimNode>()
  net: NetConfig
  now = 0
  private readonly queue = new Map<number, { m: unknown; to: NodeId }[]>()
  private group = new Map<NodeId, number>()
  private readonly cutLinks = new Set<string>()
  /** Optional test hook: return false to drop a message as it is sent, or a replacement message. */
  filter: ((m: Message) => boolean | Message) | null = null
  /** Optional test hook: crash a node at a precise point while it handles a Ready. */
  onReady: ((n: SimNode, rd: Ready) => 'crashBeforePersist' | 'crashAfterPersist' | undefined) | null = null
  private readonly trace: string[] = []

  // Global knowledge used by the invariant checks.
  private readonly leaderOfTerm = new Map<number, NodeId>()
  /** committedKey[i]: entry key at index i, once any node has committed it. */
  private readonly committedKey: string[] = []
  maxCommitted = 0
  /** Rolling state-machine hash after applying index i (first observer wins). */
  private readonly hashAt: number[] = []
  /** Log Matching: (index, term) -> prevTerm + content. */
  private readonly entryIdentity = new Map<string, string>()
  /** Highest index applied anywhere: reads started later must return >= this. */
  maxApplied = 0
  private readonly readFloor = new Map<string, number>()
  private readSeq = 0
  readsServed = 0
  private proposalSeq = 0
  /** Proposals that some node applied (index -> value). */
  readonly acked = new Map<number, string>()
  readonly proposed = new Map<string, { index: number; term: number }>()
  messagesSent = 0

  constructor(cfg: SimConfig) {
    this.cfg = cfg
    this.rng = seededRandom(cfg.seed)
    this.net = { drop: 0, duplicate: 0, minDelay: 1, maxDelay: 1, ...cfg.net }
    for (const id of [...cfg.voters, ...(cfg.learners ?? [])]) this.nodes.set(id, new SimNode(id, true))
    for (const id of cfg.spares ?? []) this.nodes.set(id, new SimNode(id, false))
    for (const n of this.nodes.values()) this.start(n)
  }

  // -------------------------------------------------------------------------
  // Node lifecycle

  private coreConfig(n: SimNode): RaftConfig {
    const c: RaftConfig = {
      id: n.id,
      seed: Math.floor(this.rng() * 2 ** 32),
      electionTick: this.cfg.electionTick ?? 10,
      heartbeatTick: this.cfg.heartbeatTick ?? 1,
      preVote: this.cfg.preVote ?? true,
      checkQuorum: this.cfg.checkQuorum ?? true,
    }
    if (this.cfg.maxInflight !== undefined) c.maxInflight = this.cfg.maxInflight
    if (this.cfg.maxSizePerMsg !== undefined) c.maxSizePerMsg = this.cfg.maxSizePerMsg
    if (n.founder) {
      c.voters = this.cfg.voters
      c.learners = this.cfg.learners ?? []
    }
    return c
  }

  private start(n: SimNode): void {
    const d = n.durable
    const cfg = this.coreConfig(n)
    cfg.storage = { hardState: { ...d.hardState }, entries: d.entries.slice(), snapshot: d.snapshot }
    n.sm = d.snapshot ? decodeSm(d.snapshot) : { index: 0, hash: 0, values: [] }
    n.core = new RaftCore(cfg)
    n.checkedCommit = n.core.firstIndex - 1
    n.readStates = []
  }

  crash(id: NodeId): void {
    const n = this.node(id)
    if (!n.up) return
    this.log(`crash ${id} (term ${n.core!.term}, ${n.core!.role})`)
    n.core = null
  }

  restart(id: NodeId): void {
    const n = this.node(id)
    if (n.up) return
    n.restarts++
    this.start(n)
    this.log(`restart ${id} (term ${n.core!.term}, last ${n.core!.lastIndex}, commit ${n.core!.commitIndex})`)
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id)
    if (!n) throw new SimError(`no node ${id}`)
    return n
  }

  core(id: NodeId): RaftCore {
    const c = this.node(id).core
    if (!c) throw new SimError(`node ${id} is down`)
    return c
  }

  upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up)
  }

  // -------------------------------------------------------------------------
  // Network

  partition(...groups: NodeId[][]): void {
    this.group = new Map()
    groups.forEach((g, k) => { for (const id of g) this.group.set(id, k + 1) })
    this.log(`partition ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`)
  }

  isolate(id: NodeId): void {
    this.partition([id], [...this.nodes.keys()].filter((x) => x !== id))
  }

  heal(): void {
    this.group = new Map()
    this.cutLinks.clear()
    this.log('heal')
  }

  /** Cuts the one-way link from -> to. */
  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}>${to}`)
  }

  canTalk(from: NodeId, to: NodeId): boolean {
    return (this.group.get(from) ?? 0) === (this.group.get(to) ?? 0) && !this.cutLinks.has(`${from}>${to}`)
  }

  /** Puts a raw (possibly malformed) message on the wire to `to`. */
  inject(msg: unknown, to: NodeId, delay = 1): void {
    this.enqueue(msg, to, this.now + delay)
  }

  private enqueue(m: unknown, to: NodeId, at: number): void {
    let q = this.queue.get(at)
    if (!q) this.queue.set(at, (q = []))
    q.push({ m, to })
  }

  private send(m: Message): void {
    this.messagesSent++
    if (!this.canTalk(m.from, m.to)) return
    if (this.filter) {
      const f = this.filter(m)
      if (f === false) return
      if (f !== true) m = f
    }
    if (this.net.drop > 0 && this.rng() < this.net.drop) return
    const copies = this.net.duplicate > 0 && this.rng() < this.net.duplicate ? 2 : 1
    for (let k = 0; k < copies; k++) {
      const span = this.net.maxDelay - this.net.minDelay + 1
      const delay = this.net.minDelay + Math.floor(this.rng() * span)
      this.enqueue(this.cfg.cloneMessages ? structuredClone(m) : m, m.to, this.now + delay)
    }
  }

  // -------------------------------------------------------------------------
  // Driving

  /** One network step: deliver due messages, maybe tick, handle Readys, check invariants. */
  step(): void {
    this.now++
    const due = this.queue.get(this.now)
    if (due) {
      this.queue.delete(this.now)
      for (const { m, to } of due) {
        const n = this.nodes.get(to)
        if (!n || !n.core) continue
        const from = (m as { from?: unknown } | null)?.from
        if (typeof from === 'string' && !this.canTalk(from, to)) continue
        n.core.step(m)
      }
    }
    if (this.now % (this.cfg.stepsPerTick ?? 2) === 0) {
      for (const n of this.nodes.values()) n.core?.tick()
    }
    for (const n of this.nodes.values()) this.processReady(n)
    this.checkInvariants()
  }

  run(steps: number): void {
    for (let i = 0; i < steps; i++) this.step()
  }

  /** Steps until `pred` holds; throws after `max` steps. */
  runUntil(pred: () => boolean, max: number, what = 'condition'): number {
    for (let i = 0; i < max; i++) {
      if (pred()) return i
      this.step()
    }
    if (pred()) return max
    throw this.fail(`timed out after ${max} steps waiting for ${what}`)
  }

  processReady(n: SimNode): void {
    let guard = 0
    while (n.core && n.core.hasReady()) {
      if (++guard > 100) throw this.fail(`${n.id}: ready loop does not converge`)
      const core = n.core
      const rd = core.ready()
      this.checkReady(n, rd)
      const hooked = this.onReady?.(n, rd)
      const crash = this.cfg.crashInReady ?? 0
      if (hooked !== undefined || (crash > 0 && this.rng() < crash)) {
        const where = hooked === undefined ? this.rng() : hooked === 'crashBeforePersist' ? 0 : 1
        if (where < 0.5) {
          this.log(`${n.id} crashes before persisting a Ready (${rd.entries.length} entries${rd.snapshot ? ', snapshot' : ''})`)
          n.core = null
          return
        }
        this.persist(n, rd)
        this.log(`${n.id} crashes after persisting, before sending`)
        n.core = null
        return
      }
      this.persist(n, rd)
      for (const m of rd.messages) this.send(m)
      if (rd.snapshot) this.restoreSm(n, rd.snapshot)
      for (const e of rd.committedEntries) this.apply(n, e)
      for (const rs of rd.readStates) this.onReadState(n, rs)
      if (rd.softState) {
        this.log(`${n.id} is ${rd.softState.role} term ${core.term} leader ${rd.softState.leader ?? '-'}`)
      }
      core.advance()
      this.maybeCompact(n)
    }
  }

  private persist(n: SimNode, rd: Ready): void {
    const d = n.durable
    if (rd.snapshot) {
      d.snapshot = rd.snapshot
      d.entries = []
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index
      const base = d.entries.length > 0 ? d.entries[0]!.index : (d.snapshot?.meta.index ?? 0) + 1
      if (first < base || first > base + d.entries.length) {
        throw this.fail(`${n.id}: Ready entries start at ${first}, stored log is [${base}, ${base + d.entries.length})`)
      }
      d.entries.length = first - base
      for (const e of rd.entries) d.entries.push(e)
    }
    if (rd.hardState) {
      const old = d.hardState
      const hs = rd.hardState
      if (hs.term < old.term) throw this.fail(`${n.id}: durable term went back ${old.term} -> ${hs.term}`)
      if (hs.term === old.term && old.vote !== null && hs.vote !== old.vote) {
        throw this.fail(`${n.id}: changed its vote in term ${hs.term}: ${old.vote} -> ${hs.vote}`)
      }
      if (hs.commit < old.commit) throw this.fail(`${n.id}: durable commit went back ${old.commit} -> ${hs.commit}`)
      d.hardState = { ...hs }
    }
  }

  private restoreSm(n: SimNode, s: Snapshot): void {
    const sm = decodeSm(s)
    const known = this.hashAt[s.meta.index]
    if (known !== undefined && known !== sm.hash) throw this.fail(`${n.id}: snapshot at ${s.meta.index} has a different state`)
    n.sm = sm
    this.log(`${n.id} installed snapshot at ${s.meta.index} (term ${s.meta.term})`)
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.sm.index + 1) throw this.fail(`${n.id}: applied ${e.index} after ${n.sm.index}`)
    const key = entryKey(e)
    // State Machine Safety: no two nodes apply different entries at one index.
    const ck = this.committedKey[e.index]
    if (ck !== undefined && ck !== key) throw this.fail(`${n.id}: applied ${key} at ${e.index}, others have ${ck}`)
    this.recordCommitted(e.index, key, n.id)
    n.sm.hash = hashString(`${n.sm.hash}:${key}`)
    n.sm.index = e.index
    if (e.type === 'normal') n.sm.values.push(dec.decode(e.data))
    const h = this.hashAt[e.index]
    if (h === undefined) this.hashAt[e.index] = n.sm.hash
    else if (h !== n.sm.hash) throw this.fail(`${n.id}: state diverged at ${e.index}`)
    if (e.index > this.maxApplied) this.maxApplied = e.index
    if (e.type === 'normal') this.acked.set(e.index, dec.decode(e.data))
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data)
      this.log(`${n.id} applied conf change ${JSON.stringify(cc)} at ${e.index}`)
    }
  }

  private maybeCompact(n: SimNode): void {
    const every = this.cfg.compactEvery ?? 0
    const core = n.core
    if (every <= 0 || !core) return
    const snapIndex = core.firstIndex - 1
    if (core.appliedIndex - snapIndex < every) return
    const data = encodeSm(n.sm)
    const meta = core.compact(n.sm.index, data)
    if (meta instanceof Error) throw this.fail(`${n.id}: compact failed: ${meta.message}`)
    n.durable.snapshot = { meta, data }
    n.durable.entries = n.durable.entries.filter((e) => e.index > meta.index)
  }

  private onReadState(n: SimNode, rs: ReadState): void {
    const floor = this.readFloor.get(rs.requestId)
    if (floor === undefined) throw this.fail(`${n.id}: unknown read ${rs.requestId}`)
    if (rs.index < floor) {
      throw this.fail(`${n.id}: read ${rs.requestId} got index ${rs.index} < ${floor} already applied before it started`)
    }
    this.readFloor.delete(rs.requestId)
    n.readStates.push(rs)
    this.readsServed++
  }

  // -------------------------------------------------------------------------
  // Client operations

  leaders(): SimNode[] {
    return this.upNodes().filter((n) => n.core!.role === 'leader')
  }

  /** The leader of the highest term among running nodes, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.leaders()) if (!best || n.core!.term > best.core!.term) best = n
    return best
  }

  propose(id?: NodeId, value?: string): ProposeResult | null {
    const n = id !== undefined ? this.node(id) : this.leader()
    if (!n || !n.core) return null
    const v = value ?? `v${++this.proposalSeq}`
    const r = n.core.propose(enc.encode(v))
    if (r.ok) this.proposed.set(v, { index: r.index, term: r.term })
    return r
  }

  confChange(cc: ConfChange, id?: NodeId): ProposeResult | null {
    const n = id !== undefined ? this.node(id) : this.leader()
    if (!n || !n.core) return null
    const r = n.core.proposeConfChange(cc)
    this.log(`propose ${cc.type} ${cc.nodeId} at ${n.id}: ${r.ok ? `index ${r.index}` : r.error}`)
    return r
  }

  /** Starts a ReadIndex request; the floor is everything applied anywhere so far. */
  read(id?: NodeId): string | null {
    const n = id !== undefined ? this.node(id) : this.leader()
    if (!n || !n.core) return null
    const rid = `r${++this.readSeq}`
    this.readFloor.set(rid, this.maxApplied)
    const r = n.core.readIndex(rid)
    if (!r.ok) {
      this.readFloor.delete(rid)
      return null
    }
    return rid
  }

  isApplied(value: string): boolean {
    const p = this.proposed.get(value)
    return p !== undefined && this.acked.get(p.index) === value
  }

  appliedEverywhere(value: string, ids: NodeId[]): boolean {
    const p = this.proposed.get(value)
    if (!p || this.acked.get(p.index) !== value) return false
    return ids.every((id) => this.node(id).sm.index >= p.index)
  }

  // -------------------------------------------------------------------------
  // Invariants

  private recordCommitted(i: number, key: string, by: NodeId): void {
    const ck = this.committedKey[i]
    if (ck === undefined) {
      this.committedKey[i] = key
      if (i > this.maxCommitted) this.maxCommitted = i
    } else if (ck !== key) {
      throw this.fail(`${by}: committed ${key} at ${i}, but ${ck} was committed there before`)
    }
  }

  /** Log Matching, checked on every entry as it is handed out for persistence. */
  private checkReady(n: SimNode, rd: Ready): void {
    const core = n.core!
    let prevTerm = rd.entries.length > 0 ? core.logTerm(rd.entries[0]!.index - 1) : 0
    if (prevTerm === undefined) throw this.fail(`${n.id}: Ready entries do not follow its log`)
    for (const e of rd.entries) {
      const id = `${e.index}:${e.term}`
      const val = `${prevTerm}|${e.type}|${dec.decode(e.data)}`
      const known = this.entryIdentity.get(id)
      if (known === undefined) this.entryIdentity.set(id, val)
      else if (known !== val) throw this.fail(`${n.id}: Log Matching violated at ${id}: ${val} vs ${known}`)
      prevTerm = e.term
    }
    for (const m of rd.messages) {
      if (m.from !== n.id) throw this.fail(`${n.id}: message with from=${m.from}`)
    }
  }

  checkInvariants(): void {
    for (const n of this.nodes.values()) {
      const core = n.core
      if (!core) continue
      // Election Safety: at most one leader per term.
      if (core.role === 'leader') {
        const other = this.leaderOfTerm.get(core.term)
        if (other === undefined) {
          this.leaderOfTerm.set(core.term, n.id)
          this.checkLeaderCompleteness(n)
        } else if (other !== n.id) {
          throw this.fail(`two leaders in term ${core.term}: ${other} and ${n.id}`)
        }
      }
      // Every entry a node considers committed must agree with every other
      // node's committed entries at that index.
      const commit = core.commitIndex
      if (commit > n.checkedCommit) {
        const from = Math.max(n.checkedCommit + 1, core.firstIndex)
        for (const e of core.entries(from, commit + 1)) this.recordCommitted(e.index, entryKey(e), n.id)
        n.checkedCommit = commit
      }
    }
  }

  /** Leader Completeness: a new leader's log holds every entry known committed. */
  private checkLeaderCompleteness(n: SimNode): void {
    const core = n.core!
    if (core.lastIndex < this.maxCommitted) {
      throw this.fail(`new leader ${n.id} (term ${core.term}) lacks committed entries: last ${core.lastIndex} < ${this.maxCommitted}`)
    }
    const from = core.firstIndex
    for (const e of core.entries(from, this.maxCommitted + 1)) {
      const ck = this.committedKey[e.index]
      if (ck !== undefined && ck !== entryKey(e)) {
        throw this.fail(`new leader ${n.id} (term ${core.term}) has ${entryKey(e)} at ${e.index}, committed was ${ck}`)
      }
    }
  }

  /** Members according to the most recent leader (or the founders). */
  members(): NodeId[] {
    const l = this.leader()
    if (!l) return [...this.cfg.voters, ...(this.cfg.learners ?? [])]
    const c = l.core!.confState()
    return [...c.voters, ...c.learners]
  }

  /**
   * Heals everything, restarts crashed nodes, and waits until the cluster
   * has a leader that commits a fresh entry which every member applies.
   * Then checks that all members hold identical state and every
   * acknowledged write. Returns the steps it took.
   */
  settle(max = 2000): number {
    this.heal()
    this.filter = null
    this.onReady = null
    this.net = { drop: 0, duplicate: 0, minDelay: 1, maxDelay: 1 }
    const crashRate = this.cfg.crashInReady
    this.cfg.crashInReady = 0
    for (const n of this.nodes.values()) if (!n.up) this.restart(n.id)
    const start = this.now
    let value: string | null = null
    this.runUntil(() => {
      const l = this.leader()
      if (!l) return false
      const p = value === null ? undefined : this.proposed.get(value)
      if (value === null || !p || (l.core!.term !== p.term && this.acked.get(p.index) !== value)) {
        // (Re)propose: the previous attempt was refused or lost to a leader change.
        const v = `settle-${this.now}`
        value = this.propose(l.id, v)?.ok ? v : null
        return false
      }
      if (!this.appliedEverywhere(value, this.members())) return false
      // ...and nothing else is in flight: every member applied the leader's commit index.
      const commit = l.core!.commitIndex
      return this.members().every((id) => this.node(id).sm.index === commit)
    }, max, 'the cluster to settle')
    this.cfg.crashInReady = crashRate
    this.checkConverged()
    return this.now - start
  }

  checkConverged(): void {
    const members = this.members().map((id) => this.node(id))
    const ref = members[0]!
    for (const n of members) {
      if (n.sm.index !== ref.sm.index || n.sm.hash !== ref.sm.hash) {
        throw this.fail(`${n.id} state (${n.sm.index}/${n.sm.hash}) differs from ${ref.id} (${ref.sm.index}/${ref.sm.hash})`)
      }
    }
    for (const [index, value] of this.acked) {
      if (index > ref.sm.index) throw this.fail(`acknowledged ${value}@${index} beyond final state ${ref.sm.index}`)
      if (this.committedKey[index]?.split('|')[2] !== value) throw this.fail(`acknowledged ${value}@${index} lost`)
    }
    // Full Log Matching check on the in-memory logs of all running nodes.
    const ups = this.upNodes()
    for (let a = 0; a < ups.length; a++) {
      for (let b = a + 1; b < ups.length; b++) this.checkLogsMatch(ups[a]!.core!, ups[b]!.core!)
    }
  }

  private checkLogsMatch(x: RaftCore, y: RaftCore): void {
    const lo = Math.max(x.firstIndex - 1, y.firstIndex - 1)
    const hi = Math.min(x.lastIndex, y.lastIndex)
    let agreeFrom = -1
    for (let i = hi; i >= lo; i--) {
      if (x.logTerm(i) === y.logTerm(i)) { agreeFrom = i; break }
    }
    for (let i = lo; i <= agreeFrom; i++) {
      if (x.logTerm(i) !== y.logTerm(i)) throw this.fail(`logs of ${x.id} and ${y.id} match at ${agreeFrom} but differ at ${i}`)
    }
    for (const e of x.entries(lo + 1, agreeFrom + 1)) {
      const f = y.entries(e.index, e.index + 1)[0]!
      if (entryKey(e) !== entryKey(f)) throw this.fail(`logs of ${x.id} and ${y.id} differ in content at ${e.index}`)
    }
  }

  // -------------------------------------------------------------------------
  // Diagnostics

  log(s: string): void {
    this.trace.push(`[${this.now}] ${s}`)
    if (this.trace.length > 300) this.trace.splice(0, this.trace.length - 200)
  }

  recentTrace(n = 60): string {
    return this.trace.slice(-n).join('\n')
  }

  fail(msg: string): SimError {
    return new SimError(`seed ${this.cfg.seed} step ${this.now}: ${msg}\n--- recent events ---\n${this.recentTrace()}`)
  }

  describe(): string {
    return [...this.nodes.values()].map((n) => {
      if (!n.core) return `${n.id}: down`
      const c = n.core
      return `${n.id}: ${c.role} t${c.term} lead=${c.leader ?? '-'} commit=${c.commitIndex} last=${c.lastIndex} applied=${n.sm.index}`
    }).join('\n')
  }
}

export function ids(n: number): NodeId[] {
  return Array.from({ length: n }, (_, i) => `n${i + 1}`)
}

/** Seeds for randomized tests: RAFT_SEED=x runs exactly x; RAFT_SEEDS=N runs N seeds (default `dflt`). */
export function seeds(dflt: number, base = 1): number[] {
  const one = process.env.RAFT_SEED
  if (one !== undefined && one !== '') return [Number(one)]
  const count = Number(process.env.RAFT_SEEDS ?? dflt)
  return Array.from({ length: count }, (_, i) => base + i)
}

/** A reliable cluster of n voters (n1..nn) unless `o` says otherwise. */
export function cluster(n: number, o: Partial<SimConfig> = {}): Sim {
  return new Sim({ seed: 1, voters: ids(n), ...o })
}

/** Runs until one leader is recognised by every running member; returns it. */
export function waitLeader(sim: Sim, max = 1000, among?: NodeId[]): SimNode {
  let found: SimNode | undefined
  sim.runUntil(() => {
    const l = sim.leader()
    if (!l || (among && !among.includes(l.id))) return false
    const members = new Set(among ?? sim.members())
    const ok = sim.upNodes().every((n) => !members.has(n.id) || (n.core!.leader === l.id && n.core!.term === l.core!.term))
    if (ok) found = l
    return ok
  }, max, 'a stable leader')
  return found!
}

/** Proposes `value` at the current leader (retrying across leader changes) until applied on `on`. */
export function commit(sim: Sim, value: string, on: NodeId[] = sim.members(), max = 1000): void {
  sim.runUntil(() => {
    const p = sim.proposed.get(value)
    const l = sim.leader()
    if (!p || (l && l.core!.term !== p.term && !sim.isApplied(value))) {
      if (l) sim.propose(l.id, value)
      return false
    }
    return sim.appliedEverywhere(value, on.filter((id) => sim.node(id).up))
  }, max, `${value} to be applied`)
}

function confReflects(c: { voters: NodeId[]; learners: NodeId[] }, cc: ConfChange): boolean {
  const v = c.voters.includes(cc.nodeId)
  const l = c.learners.includes(cc.nodeId)
  switch (cc.type) {
    case 'addLearner': return l || v
    case 'promote': return v
    case 'demote': return l
    case 'remove': return !v && !l
  }
}

/** Drives a membership change to commit, re-proposing across leader changes. */
export function changeConf(sim: Sim, cc: ConfChange, max = 2000): void {
  sim.runUntil(() => {
    const l = sim.leader()
    if (!l) return false
    const c = l.core!
    if (!confReflects(c.confState(), cc)) {
      sim.confChange(cc, l.id)
      return false
    }
    return c.commitIndex === c.lastIndex
  }, max, `${cc.type} ${cc.nodeId} to commit`)
}
