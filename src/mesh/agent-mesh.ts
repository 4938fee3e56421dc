// The mesh as an agent runs it: the catalog read from the replicated state,
// published listeners refreshed when a service's catalog entry changes, and
// the allocation hooks that give tasks their upstream listeners.
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import type { StateStore } from '../fsm/state.ts'
import type { AllocNetworkHooks } from '../runtime/alloc-runner.ts'
import type { TaskGroup } from '../structs/index.ts'
import type { Backend } from './balancer.ts'
import type { PublishSpec } from './listeners.ts'
import { Mesh, type Datapath, type ListenerStatus, type MeshCatalog, type MeshLogger } from './mesh.ts'
import { NatDatapath } from './nat-datapath.ts'
import type { DatapathChoice } from './nat-rules.ts'
import type { ServiceCounters } from './proxy.ts'
import { Upstreams, type UpstreamRequest, type UpstreamStatus } from './upstreams.ts'

/** The catalog as the replicated state holds it. */
export class StateCatalog implements MeshCatalog {
  readonly #state: StateStore

  constructor(state: StateStore) {
    this.#state = state
  }

  published(): PublishSpec[] {
    const jobs = this.#state.tables.jobs
    return this.#state.publishedPorts()
      .map((p) => ({ p, order: jobs.get(p.jobId)?.createIndex ?? 0 }))
      .sort((a, b) => a.order - b.order || a.p.jobId.localeCompare(b.p.jobId) || a.p.service.name.localeCompare(b.p.service.name))
      .map(({ p }) => {
        const pub = p.service.publish!
        return {
          service: p.service.name, jobId: p.jobId, port: p.port, balance: pub.balance, mode: pub.mode,
          ...(pub.proxyProtocol ? { proxyProtocol: pub.proxyProtocol } : {}),
        }
      })
  }

  backends(service: string): Backend[] {
    const out: Backend[] = []
    for (const i of this.#state.serviceInstances(service)) {
      if (i.healthy) out.push({ key: `${i.allocId}/${i.address}:${i.port}`, address: i.address, port: i.port })
    }
    return out
  }

  known(service: string): boolean {
    return this.#state.services().some((s) => s.name === service && s.jobs.length > 0)
  }
}

export interface MeshStatus {
  /** The data path of published ports on this agent; `chain`: its iptables chain; `reason`: why not the kernel. */
  datapath: { mode: Datapath; chain?: string; reason?: string }
  listeners: ListenerStatus[]
  upstreams: UpstreamStatus[]
  services: Record<string, ServiceCounters & { instances: number }>
}

export class AgentMesh {
  readonly mesh: Mesh
  readonly upstreams: Upstreams
  readonly #fsm: Fsm
  readonly #onApplied = (e: AppliedEvent) => { if (e.services.length > 0) this.mesh.refresh() }
  readonly #onRestored = () => this.mesh.refresh()
  readonly #o: { nodeId: string; bindHost: string; datapath: DatapathChoice; log: MeshLogger }
  #kernel: NatDatapath | null = null
  #userspaceReason: string | undefined

  constructor(o: { fsm: Fsm; nodeId: string; bindHost: string; datapath?: DatapathChoice; log: MeshLogger }) {
    this.#fsm = o.fsm
    this.#o = { nodeId: o.nodeId, bindHost: o.bindHost, datapath: o.datapath ?? 'auto', log: o.log }
    const catalog = new StateCatalog(o.fsm.state)
    this.mesh = new Mesh({ catalog, bindHost: o.bindHost, log: o.log })
    this.upstreams = new Upstreams({ proxy: (service, socket) => this.mesh.proxy(service, socket), known: (s) => catalog.known(s), log: o.log })
  }

  /** Hooks the client gives every allocation runner: upstream listeners before the tasks start. */
  readonly allocHooks: AllocNetworkHooks = {
    wantsGroupNamespace: (group: TaskGroup) => group.tasks.some((t) => t.driver === 'docker' && (t.upstreams?.length ?? 0) > 0),
    setup: async (ctx) => {
      const upstreams: UpstreamRequest[] = ctx.group.tasks.flatMap((t) =>
        (t.upstreams ?? []).map((u) => ({ task: t.name, driver: t.driver, service: u.service, localPort: u.localPort })))
      if (upstreams.length === 0) return
      // The pools exist from now on (not from the first connection): the status shows the upstreams' instances.
      for (const u of upstreams) this.mesh.pool(u.service)
      await this.upstreams.attach({ allocId: ctx.alloc.id, upstreams, note: ctx.note, ...(ctx.netnsPid !== undefined ? { netnsPid: ctx.netnsPid } : {}) })
    },
    teardown: (allocId) => this.upstreams.detach(allocId),
  }

  /**
   * Chooses the data path (throws when `kernel` was asked for and cannot be
   * had), then follows the catalog.
   */
  async start(): Promise<void> {
    const { datapath, log } = this.#o
    if (datapath === 'userspace') this.#userspaceReason = '--mesh-datapath userspace'
    else {
      try {
        this.#kernel = await NatDatapath.open({ owner: this.#o.nodeId, bind: this.#o.bindHost, log })
        this.mesh.useKernel(this.#kernel)
        log.info(`mesh: published ports on the kernel data path (iptables nat chain ${this.#kernel.chains.prefix})`)
      } catch (err) {
        const why = (err as Error).message
        if (datapath === 'kernel') throw new Error(`--mesh-datapath kernel: ${why}`)
        this.#userspaceReason = why
        log.info(`mesh: published ports on the user-space proxy: ${why}`)
      }
    }
    this.mesh.refresh()
    this.#fsm.on('applied', this.#onApplied)
    this.#fsm.on('restored', this.#onRestored)
  }

  async status(): Promise<MeshStatus> {
    const kernel = this.#kernel
    const { listeners, services } = this.mesh.status(kernel ? await kernel.requests() : undefined)
    const datapath: MeshStatus['datapath'] = kernel
      ? { mode: 'kernel', chain: kernel.chains.prefix }
      : { mode: 'userspace', ...(this.#userspaceReason ? { reason: this.#userspaceReason } : {}) }
    return { datapath, listeners, upstreams: this.upstreams.status(), services }
  }

  async close(): Promise<void> {
    this.#fsm.off('applied', this.#onApplied)
    this.#fsm.off('restored', this.#onRestored)
    this.upstreams.close()
    await this.mesh.close()
  }
}
