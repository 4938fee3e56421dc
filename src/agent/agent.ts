// One Shoal agent: the replicated state machine (Raft over libp2p), the
// leader's duties (evaluation broker, voter set), the client that runs
// allocations, and the HTTP API. In dev mode it is a one-voter cluster with
// no network.
import { mkdir, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { encode } from '../fsm/codec.ts'
import { Fsm } from '../fsm/fsm.ts'
import { GC_INTERVAL_MS, GC_THRESHOLD_MS } from '../fsm/gc.ts'
import type { ShoalHost } from '../gossip/host.ts'
import { loadOrCreateIdentity } from '../gossip/identity.ts'
import type { Membership, MemberEvent } from '../gossip/membership.ts'
import { RaftNode } from '../raft/node.ts'
import { RaftStorage } from '../raft/storage.ts'
import { isSnapshotChunk, SnapshotAssembler, splitSnapshot } from '../raft/snapshot-chunks.ts'
import type { RaftTransport } from '../raft/transport.ts'
import type { Message } from '../raft/types.ts'
import { DockerDriver } from '../runtime/docker.ts'
import type { Driver } from '../runtime/driver.ts'
import { ExecDriver } from '../runtime/exec.ts'
import { AgentMesh } from '../mesh/agent-mesh.ts'
import type { DatapathChoice } from '../mesh/nat-rules.ts'
import type { Member } from '../structs/index.ts'
import { Autoscaler } from './autoscaler.ts'
import { Client } from './client.ts'
import { fingerprint } from './fingerprint.ts'
import { DeploymentWatcher } from './deployment-watcher.ts'
import { NodeDrainer } from './drainer.ts'
import { EvalBroker, type Logger } from './leader.ts'
import { consoleLogger } from './log.ts'
import { ClusterOps } from './ops.ts'
import { errorCode, fsmStateMachine, RaftProposer } from './raft-proposer.ts'
import { EventBroker } from './events.ts'
import type { ClusterRpc } from './rpc.ts'
import { DEAD_MEMBER_GRACE_MS, nextVoterChange, type Liveness } from './voters.ts'

export { DEFAULT_HTTP_PORT, DEFAULT_P2P_PORT } from './defaults.ts'
export const DEFAULT_PORT_RANGE = { min: 20000, max: 32000 }
const LEADER_DUTY_MS = 500
const JOIN_TIMEOUT_MS = 30_000

export interface AgentConfig {
  dataDir: string
  name: string
  /** One-voter cluster, no network. */
  dev: boolean
  /** Address of this node: libp2p listens here and allocations publish ports on it. */
  bindHost: string
  /** libp2p TCP port (0 = any). */
  bindPort: number
  /** host:port the HTTP API listens on (filled in once listening). */
  http: string
  /** host:port the DNS server answers on (filled in once listening); absent: no DNS. */
  dns?: string
  /** Peers (multiaddr or host:port) to join through when this agent has no cluster state yet. */
  join: string[]
  /** Target number of Raft voters the leader maintains. */
  voters: number
  /** Addresses other members should dial instead of the listen address. */
  advertise?: string[]
  /** Applied entries between Raft snapshots (log compaction). */
  snapshotThreshold?: number
  /** Age after which finished state is collected (default 1 h; see fsm/gc.ts). */
  gcThresholdMs?: number
  /** How often the leader collects (default 5 min). */
  gcIntervalMs?: number
  /** How published ports are served: kernel NAT rules or the user-space proxy (default auto: the kernel when it can). */
  meshDatapath?: DatapathChoice
  /** Node attributes from --meta key=value, for constraints (`${meta.key}`). */
  meta?: Record<string, string>
  clusterKey?: Uint8Array
  drivers?: readonly Driver[]
  log?: Logger
}

interface JoinRequest {
  id: string
  name: string
  addrs: string[]
  http: string
}

const noTransport = { send: (_to: string, _m: Message) => undefined }

function openRaft(config: AgentConfig, nodeId: string, storage: RaftStorage, fsm: Fsm, net: RaftTransport | null, bootstrap: boolean): Promise<RaftNode> {
  const transport = net
    ? {
        send(to: string, m: Message) {
          if (m.type === 'installSnapshot') for (const c of splitSnapshot(m)) net.send(to, c)
          else net.send(to, m)
        },
      }
    : noTransport
  return RaftNode.open({
    id: nodeId, storage, stateMachine: fsmStateMachine(fsm), transport,
    ...(bootstrap ? { voters: [nodeId] } : {}), log: consoleLogger('raft'),
    ...(config.snapshotThreshold ? { snapshotEvery: config.snapshotThreshold } : {}),
  })
}

/** Why this agent's state cannot be thrown away to join another cluster, or null. */
function holdsState(fsm: Fsm, nodeId: string): string | null {
  const jobs = fsm.state.list('jobs').length
  const vars = fsm.state.list('vars').length
  const allocs = fsm.state.list('allocs').length
  const others = fsm.state.list('nodes').filter((n) => n.id !== nodeId).length
  if (jobs + vars + allocs + others === 0) return null
  return `its cluster holds ${jobs} job(s), ${vars} variable(s), ${allocs} allocation(s) and ${others} other node(s); joining would discard them`
}

export class Agent {
  readonly config: AgentConfig
  readonly fsm: Fsm
  #raft: RaftNode
  readonly proposer: RaftProposer
  readonly ops: ClusterOps
  readonly client: Client
  /** Cluster changes as topic events (GET /v1/event/stream). */
  readonly events: EventBroker
  /** Published service ports and tasks' upstreams, proxied to healthy instances. */
  readonly mesh: AgentMesh
  readonly nodeId: string
  readonly log: Logger
  readonly #storage: RaftStorage
  readonly #host: ShoalHost | null
  readonly #transport: RaftTransport | null
  readonly #rpc: ClusterRpc | null
  readonly #membership: Membership | null
  /** When gossip first reported a member dead or gone (cleared when it is alive again). */
  readonly #goneSince = new Map<string, number>()
  readonly #drivers: readonly Driver[]
  readonly #fresh: boolean
  #broker: EvalBroker | null = null
  #autoscaler: Autoscaler | null = null
  #deployments: DeploymentWatcher | null = null
  #drainer: NodeDrainer | null = null
  #voterTimer: NodeJS.Timeout | undefined
  #gcTimer: NodeJS.Timeout | undefined
  #closed = false

  private constructor(o: {
    config: AgentConfig; fsm: Fsm; storage: RaftStorage; raft: RaftNode; host: ShoalHost | null; transport: RaftTransport | null
    rpc: ClusterRpc | null; membership: Membership | null; nodeId: string; drivers: readonly Driver[]; fresh: boolean; log: Logger
  }) {
    this.config = o.config
    this.fsm = o.fsm
    this.#storage = o.storage
    this.#raft = o.raft
    this.#host = o.host
    this.#transport = o.transport
    this.#rpc = o.rpc
    this.#membership = o.membership
    this.nodeId = o.nodeId
    this.#drivers = o.drivers
    this.#fresh = o.fresh
    this.log = o.log
    this.proposer = new RaftProposer(o.raft, o.rpc)
    this.ops = new ClusterOps(this.proposer, o.fsm.state)
    this.mesh = new AgentMesh({
      fsm: o.fsm, nodeId: o.nodeId, bindHost: o.config.bindHost, log: consoleLogger('mesh'),
      ...(o.config.meshDatapath ? { datapath: o.config.meshDatapath } : {}),
    })
    this.client = new Client({
      fsm: o.fsm, writer: this.ops, nodeId: o.nodeId, dataDir: o.config.dataDir, drivers: o.drivers, log: consoleLogger('client'),
      network: this.mesh.allocHooks,
      stateCurrent: () => this.#stateCurrent(),
    })
    this.events = new EventBroker(o.fsm)
  }

  static async open(config: AgentConfig): Promise<Agent> {
    const log = config.log ?? consoleLogger('agent')
    await mkdir(config.dataDir, { recursive: true })
    const identity = await loadOrCreateIdentity(config.dataDir)
    const nodeId = identity.peerId
    // Earlier builds kept a copy of the state in <data dir>/state; the Raft
    // log and snapshot hold all of it, and the state is rebuilt from them.
    await rm(join(config.dataDir, 'state'), { recursive: true, force: true })
    const fsm = new Fsm()
    const storage = await RaftStorage.open(join(config.dataDir, 'raft'))
    const fresh = storage.lastIndex === 0 && !storage.snapshot
    let host: ShoalHost | null = null
    let transport: RaftTransport | null = null
    let rpc: ClusterRpc | null = null
    let membership: Membership | null = null
    if (!config.dev) {
      // Loaded here: a --dev agent has no networking, and libp2p would keep ~18 MiB resident.
      const [{ createHost }, { RaftTransport }, { ClusterRpc }, { Membership }] = await Promise.all([
        import('../gossip/host.ts'), import('../raft/transport.ts'), import('./rpc.ts'), import('../gossip/membership.ts'),
      ])
      host = await createHost({
        dataDir: config.dataDir, listenHost: config.bindHost, listenPort: config.bindPort,
        ...(config.clusterKey ? { clusterKey: config.clusterKey } : {}),
        ...(config.advertise?.length ? { announce: config.advertise } : {}),
      })
      transport = await RaftTransport.create(host, { logger: consoleLogger('raft-transport') })
      rpc = new ClusterRpc(transport, errorCode)
      // A closed connection (kill -9 closes the victim's sockets) is strong evidence:
      // suspect for half the usual time; a live member still has > 0.8 s to refute.
      membership = await Membership.create(host, { logger: consoleLogger('gossip'), hintedSuspicionFactor: 0.5 })
    }
    const bootstrap = fresh && (config.dev || config.join.length === 0)
    const raft = await openRaft(config, nodeId, storage, fsm, transport, bootstrap)
    const drivers = config.drivers ?? [new DockerDriver(), new ExecDriver({ stateDir: join(config.dataDir, 'exec') })]
    return new Agent({ config, fsm, storage, raft, host, transport, rpc, membership, nodeId, drivers, fresh, log })
  }

  get raft(): RaftNode {
    return this.#raft
  }

  get p2pAddrs(): string[] {
    return this.#host?.multiaddrs() ?? []
  }

  /** Starts consensus, joins the cluster if asked, registers this node and starts its client. */
  async start(): Promise<void> {
    // First: a data path that was asked for and cannot be had stops the agent before it joins anything.
    await this.mesh.start()
    this.#wireNetwork()
    this.#watchRaft(this.#raft)
    this.#raft.start()
    if (this.#fresh && !this.config.dev && this.config.join.length > 0) await this.#joinThrough(this.config.join)
    const register = async () => {
      await this.#registerMember()
      await this.#registerNode()
    }
    // A new agent comes up registered or says why. A restarted one must not
    // die because the cluster has no leader for a moment (voters restarting
    // one after another): it runs its tasks and registers once it can.
    if (this.#fresh) await register()
    else void this.#registerWhenPossible(register)
    await this.client.start()
  }

  async #registerWhenPossible(register: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        await register()
        if (attempt > 1) this.log.info(`registered with the cluster after ${attempt} attempts`)
        return
      } catch (err) {
        const message = (err as Error).message
        if (message.startsWith('--name:')) {
          this.log.warn(message)
          process.exit(1)
        }
        if (this.#closed) return
        this.log.warn(`registering with the cluster failed (attempt ${attempt}), will retry: ${message}`)
        await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * attempt)))
      }
    }
  }

  async #registerNode(): Promise<void> {
    const fp = await fingerprint(this.#drivers, this.config.dataDir)
    const existing = this.fsm.state.get('nodes', this.nodeId)
    const duplicate = this.fsm.state.list('nodes').find((n) => n.name === this.config.name && n.id !== this.nodeId && n.status !== 'down')
    if (duplicate) throw new Error(`--name: a node named "${this.config.name}" already exists (${duplicate.id}); choose another name`)
    await this.ops.registerNode({
      id: this.nodeId, name: this.config.name, address: this.config.bindHost, http: this.config.http,
      status: 'ready', statusDescription: '', eligible: existing?.eligible ?? true,
      drivers: fp.drivers, resources: fp.resources, attributes: fp.attributes, meta: this.config.meta ?? existing?.meta ?? {},
      portRange: DEFAULT_PORT_RANGE,
    })
    this.log.info(`node ${this.config.name} (${this.nodeId}) ready: drivers [${fp.drivers.join(', ')}], ${fp.resources.cpu} MHz, ${fp.resources.memoryMB} MB`)
  }

  #watchRaft(raft: RaftNode): void {
    raft.on('softState', (s) => { if (raft === this.#raft) this.#onRole(s.role === 'leader') })
    raft.on('fatal', (err) => {
      this.log.warn(`consensus stopped after a fatal error: ${err.message}; exiting`)
      process.exit(70)
    })
  }

  /**
   * `shoal node join PEER` on a running agent: leave its own one-node cluster
   * (only when that holds nothing) and join the cluster PEER belongs to.
   */
  async joinCluster(peer: string): Promise<{ joined: boolean; message: string }> {
    if (this.config.dev || !this.#host || !this.#rpc) throw new JoinError('a --dev agent is a one-node cluster and cannot join others')
    const { peerId } = await this.#host.dial(peer).catch((err: Error) => { throw new JoinError(err.message) })
    if (this.fsm.state.get('members', peerId)) return { joined: false, message: `already in the same cluster as ${peer}` }
    const conf = this.#raft.status().conf
    if (conf.voters.length !== 1 || conf.voters[0] !== this.nodeId || conf.learners.length > 0) {
      throw new JoinError(`this agent already belongs to a cluster of ${conf.voters.length + conf.learners.length} members; to move it, stop it, remove its data dir and start it with --join`)
    }
    const why = holdsState(this.fsm, this.nodeId)
    if (why) throw new JoinError(`this agent cannot join another cluster: ${why}`)
    // Ask first: a refused join leaves this agent as it was. The leader's first
    // messages are dropped by the old node (not a member) and resent.
    await this.#joinThrough([peer])
    await this.client.close()
    this.#onRole(false)
    await this.#raft.stop()
    await this.#storage.wipe()
    await this.fsm.restore(EMPTY_STATE)
    const raft = await openRaft(this.config, this.nodeId, this.#storage, this.fsm, this.#transport, false)
    this.#raft = raft
    this.proposer.attach(raft)
    this.#watchRaft(raft)
    raft.start()
    await this.#registerMember()
    await this.#registerNode()
    await this.client.start()
    return { joined: true, message: `joined the cluster of ${peer}` }
  }

  /** Resolves once a read barrier went through (retried while no leader answers); rejects if the agent closes first. */
  async #stateCurrent(): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        return await this.readBarrier()
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(2_000, 250 * attempt)))
      }
    }
    throw new Error('agent closed before the state caught up')
  }

  /** Linearizable read barrier for `?consistent` reads. */
  readBarrier(): Promise<void> {
    return this.proposer.readBarrier()
  }

  members(): (Member & { role: 'leader' | 'voter' | 'learner' | 'none'; status: Liveness; lastSeen: number | null })[] {
    const conf = this.raft.status().conf
    const leader = this.raft.leader
    const gossip = new Map((this.#membership?.members() ?? []).map((m) => [m.id, m]))
    return this.fsm.state.list('members').sort((a, b) => a.name.localeCompare(b.name)).map((m) => {
      const g = gossip.get(m.id)
      const self = m.id === this.nodeId
      return {
        ...m,
        role: m.id === leader ? 'leader' : conf.voters.includes(m.id) ? 'voter' : conf.learners.includes(m.id) ? 'learner' : 'none',
        status: self ? 'alive' : (g?.status ?? 'alive'),
        lastSeen: self ? Date.now() : (g?.lastSeen ?? null),
      }
    })
  }

  #liveness(id: string): Liveness | undefined {
    if (!this.#membership || id === this.nodeId) return undefined
    return this.#membership.members().find((m) => m.id === id)?.status
  }

  /** SIGTERM: tell the other members we are leaving, so they need not detect it. */
  async leaveGossip(): Promise<void> {
    await this.#membership?.leave().catch(() => undefined)
  }

  leaderMember(): Member | undefined {
    const leader = this.raft.leader
    return leader ? this.fsm.state.get('members', leader) : undefined
  }

  driver(name: string): Driver {
    const d = this.#drivers.find((x) => x.name === name)
    if (!d) throw new Error(`driver "${name}" is not loaded on this agent`)
    return d
  }

  /** SIGTERM: hand leadership to the most caught-up voter first, so writes barely pause. */
  async transferLeadershipAway(timeoutMs = 3_000): Promise<void> {
    const status = this.raft.status()
    if (status.role !== 'leader' || !status.progress) return
    const target = status.conf.voters.filter((v) => v !== this.nodeId)
      .sort((a, b) => (status.progress![b]?.match ?? 0) - (status.progress![a]?.match ?? 0))[0]
    if (!target) return
    try {
      this.raft.transferLeadership(target)
    } catch (err) {
      this.log.warn(`leadership transfer to ${target} refused: ${(err as Error).message}`)
      return
    }
    const deadline = Date.now() + timeoutMs
    while (this.raft.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    this.log.info(this.raft.isLeader ? 'leadership transfer timed out' : `leadership handed to ${target}`)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#voterTimer)
    clearInterval(this.#gcTimer)
    this.#broker?.stop()
    this.#autoscaler?.stop()
    this.#deployments?.stop()
    this.#drainer?.stop()
    await this.client.close()
    await this.mesh.close()
    await this.raft.stop()
    this.#rpc?.close()
    await this.#membership?.stop().catch(() => undefined)
    await this.#transport?.close()
    await this.#host?.stop()
    await this.#storage.close()
  }

  #wireNetwork(): void {
    const transport = this.#transport
    const rpc = this.#rpc
    if (!transport || !rpc) return
    const snapshots = new SnapshotAssembler()
    transport.onMessage((from, message) => {
      if (rpc.dispatch(from, message)) return
      // Once this node has a configuration, only members speak to its Raft.
      const conf = this.raft.status().conf
      const known = conf.voters.includes(from) || conf.learners.includes(from) || this.fsm.state.get('members', from) !== undefined
      if (!known && conf.voters.length > 0) {
        this.raft.drops.nonMember = (this.raft.drops.nonMember ?? 0) + 1
        return
      }
      if (isSnapshotChunk(message)) {
        const whole = snapshots.accept(from, message)
        if (whole) this.raft.receive(from, whole)
        return
      }
      this.raft.receive(from, message)
    })
    const membership = this.#membership
    const teach = (m: Member) => {
      if (m.id === this.nodeId) return
      transport.setPeerAddresses(m.id, m.addrs)
      membership?.addPeer(m.id, m.addrs)
    }
    membership?.on('member', (e: MemberEvent) => {
      if (e.status === 'dead' || e.status === 'left') {
        if (!this.#goneSince.has(e.id)) this.#goneSince.set(e.id, e.at)
      } else {
        this.#goneSince.delete(e.id)
      }
      if (e.status !== 'suspect') this.log.info(`gossip: ${this.fsm.state.get('members', e.id)?.name ?? e.id} is ${e.status}`)
      if (this.raft.isLeader) void this.#reconcileNodes()
    })
    membership?.start()
    for (const m of this.fsm.state.list('members')) teach(m)
    this.fsm.on('applied', (e) => {
      for (const c of e.changes) if (c.table === 'members' && c.value) teach(c.value)
    })
    this.fsm.on('restored', () => this.fsm.state.list('members').forEach(teach))
    rpc.handle('join', (_from, body) => this.#handleJoin(body as JoinRequest))
  }

  #onRole(leader: boolean): void {
    if (this.#closed) return
    if (leader && !this.#broker) {
      this.log.info(`became leader (term ${this.raft.core.term})`)
      this.#broker = new EvalBroker(this.fsm, this.proposer, consoleLogger('scheduler'))
      this.#broker.start()
      this.#autoscaler = new Autoscaler({ fsm: this.fsm, ops: this.ops, log: consoleLogger('autoscaler') })
      this.#autoscaler.start()
      this.#deployments = new DeploymentWatcher(this.fsm, this.ops, consoleLogger('deployments'))
      this.#deployments.start()
      this.#drainer = new NodeDrainer(this.fsm, this.ops, consoleLogger('drainer'))
      this.#drainer.start()
      this.#voterTimer = setInterval(() => {
        void this.#maintainVoters()
        void this.#reconcileNodes()
      }, LEADER_DUTY_MS)
      this.#gcTimer = setInterval(() => void this.#collectGarbage(), this.config.gcIntervalMs ?? GC_INTERVAL_MS)
    } else if (!leader && this.#broker) {
      this.log.info('no longer leader')
      this.#broker.stop()
      this.#broker = null
      this.#autoscaler?.stop()
      this.#autoscaler = null
      this.#deployments?.stop()
      this.#deployments = null
      this.#drainer?.stop()
      this.#drainer = null
      clearInterval(this.#voterTimer)
      clearInterval(this.#gcTimer)
    }
  }

  /** The periodic collection of finished evaluations, allocations and stopped jobs (fsm/gc.ts). */
  async #collectGarbage(): Promise<void> {
    try {
      const r = await this.ops.collectGarbage(this.config.gcThresholdMs ?? GC_THRESHOLD_MS)
      if (r.index !== null) this.log.info(`state gc: removed ${r.evals.length} evaluation(s), ${r.allocs.length} allocation(s), ${r.jobs.length} job(s)`)
    } catch (err) {
      this.log.warn(`state gc: ${(err as Error).message}`)
    }
  }

  #changingVoters = false
  async #maintainVoters(): Promise<void> {
    if (this.#changingVoters) return
    const change = nextVoterChange({
      status: this.raft.status(), desired: this.config.voters, now: Date.now(),
      members: this.fsm.state.list('members').map((m) => m.id),
      liveness: (id) => this.#liveness(id), goneSince: (id) => this.#goneSince.get(id),
    })
    if (!change) return
    this.#changingVoters = true
    const name = this.fsm.state.get('members', change.nodeId)?.name ?? change.nodeId
    try {
      await this.raft.changeMembership(change)
      this.log.info(change.type === 'promote' ? `promoted ${name} to voter`
        : change.type === 'addLearner' ? `${name} is back: added as a learner`
        : change.type === 'demote' ? `demoted ${name} to learner (more voters than --voters ${this.config.voters})`
        : `removed ${name} from the Raft configuration (gone for ${DEAD_MEMBER_GRACE_MS / 1000}s+)`)
    } catch (err) {
      this.log.warn(`voter change ${change.type} ${name} failed: ${(err as Error).message}`)
    } finally {
      this.#changingVoters = false
    }
  }

  /** The leader turns gossip's verdicts into node status: down nodes get their allocations replaced. */
  #reconciling = false
  async #reconcileNodes(): Promise<void> {
    if (!this.#membership || this.#reconciling || !this.raft.isLeader) return
    this.#reconciling = true
    try {
      for (const node of this.fsm.state.list('nodes')) {
        if (node.id === this.nodeId) continue
        const l = this.#liveness(node.id)
        if ((l === 'dead' || l === 'left') && node.status !== 'down') {
          await this.ops.setNodeStatus(node.id, 'down', l === 'left' ? 'left the cluster' : 'failed gossip health checks')
          this.log.info(`node ${node.name} marked down (${l})`)
        } else if (l === 'alive' && node.status === 'down') {
          await this.ops.setNodeStatus(node.id, 'ready', 'alive again')
          this.log.info(`node ${node.name} is ready again`)
        }
      }
    } catch (err) {
      this.log.warn(`node status reconciliation failed, will retry: ${(err as Error).message}`)
    } finally {
      this.#reconciling = false
    }
  }

  /** On any member: forward to the leader, which records the member and adds it as a learner. */
  async #handleJoin(req: JoinRequest): Promise<{ leader: string }> {
    if (!req || typeof req.id !== 'string' || !Array.isArray(req.addrs) || typeof req.name !== 'string') throw new Error('malformed join request')
    if (!this.raft.isLeader) {
      const leader = this.raft.leader
      if (!leader || !this.#rpc) throw new Error('no leader known yet; retry')
      return this.#rpc.call(leader, 'join', req)
    }
    const clash = this.fsm.state.list('members').find((m) => m.name === req.name && m.id !== req.id)
    if (clash) {
      const l = this.#liveness(clash.id)
      const inConf = this.raft.status().conf
      const gone = (l === 'dead' || l === 'left') && !inConf.voters.includes(clash.id) && !inConf.learners.includes(clash.id)
      // A dead member's name may go to its replacement; a live member's may not.
      if (!gone) throw new Error(`a member named "${req.name}" already exists (${clash.id}); choose another --name`)
      await this.ops.removeMember(clash.id)
      this.log.info(`the name ${req.name} passes from dead member ${clash.id} to ${req.id}`)
    }
    this.#transport?.setPeerAddresses(req.id, req.addrs)
    await this.ops.upsertMember({ id: req.id, name: req.name, addrs: req.addrs, http: req.http })
    const conf = this.raft.status().conf
    if (!conf.voters.includes(req.id) && !conf.learners.includes(req.id)) {
      await this.#retryMembership(() => this.raft.changeMembership({ type: 'addLearner', nodeId: req.id }))
      this.log.info(`${req.name} (${req.id}) joined as a learner`)
    }
    return { leader: this.nodeId }
  }

  async #retryMembership(change: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await change()
        return
      } catch (err) {
        // Another change may still be committing; the core allows one at a time.
        if (Date.now() > deadline || !/confChangePending|notReady/.test((err as Error).message)) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  async #joinThrough(peers: string[]): Promise<void> {
    const host = this.#host!
    const rpc = this.#rpc!
    const req: JoinRequest = { id: this.nodeId, name: this.config.name, addrs: host.multiaddrs(), http: this.config.http }
    const deadline = Date.now() + JOIN_TIMEOUT_MS
    const problems: string[] = []
    while (Date.now() < deadline) {
      for (const peer of peers) {
        try {
          const { peerId } = await host.dial(peer)
          await rpc.call(peerId, 'join', req, 10_000)
          this.log.info(`joined the cluster through ${peer}`)
          return
        } catch (err) {
          problems.push(`${peer}: ${(err as Error).message}`)
          if (/cluster key mismatch|already exists/.test((err as Error).message)) throw new JoinError((err as Error).message)
        }
      }
      await new Promise((r) => setTimeout(r, 500))
    }
    throw new JoinError(`--join: could not join within ${JOIN_TIMEOUT_MS / 1000}s: ${[...new Set(problems)].slice(-3).join('; ')}`)
  }

  /** Records this agent's addresses in the replicated member table (waits for a leader). */
  async #registerMember(): Promise<void> {
    const me = this.fsm.state.get('members', this.nodeId)
    const addrs = this.p2pAddrs
    if (me && me.name === this.config.name && me.http === this.config.http && me.addrs.join() === addrs.join()) return
    await this.ops.upsertMember({ id: this.nodeId, name: this.config.name, addrs, http: this.config.http })
  }
}

/** A join that was refused or could not happen; nothing changed. */
export class JoinError extends Error {
  override name = 'JoinError'
}

const EMPTY_STATE = encode({ index: 0, rows: [] })

export function defaultNodeName(): string {
  return os.hostname()
}
