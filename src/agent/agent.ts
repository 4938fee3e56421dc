// One Shoal agent: state machine, the leader's broker, the client that runs
// allocations, and the HTTP API. In dev mode it is a one-node cluster.
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { Fsm } from '../fsm/fsm.ts'
import { DockerDriver } from '../runtime/docker.ts'
import type { Driver } from '../runtime/driver.ts'
import { ExecDriver } from '../runtime/exec.ts'
import { Client } from './client.ts'
import { fingerprint } from './fingerprint.ts'
import { EvalBroker, type Logger } from './leader.ts'
import { consoleLogger } from './log.ts'
import { ClusterOps } from './ops.ts'
import { LocalProposer } from './proposer.ts'

export const DEFAULT_HTTP_PORT = 4680
export const DEFAULT_PORT_RANGE = { min: 20000, max: 32000 }

export interface AgentConfig {
  dataDir: string
  name: string
  /** Address this node's allocations publish their ports on. */
  bindHost: string
  /** host:port the HTTP API listens on (filled in once listening). */
  http: string
  drivers?: readonly Driver[]
  log?: Logger
}

export class Agent {
  readonly config: AgentConfig
  readonly fsm: Fsm
  readonly ops: ClusterOps
  readonly client: Client
  readonly nodeId: string
  readonly log: Logger
  readonly #broker: EvalBroker
  readonly #drivers: readonly Driver[]

  private constructor(config: AgentConfig, fsm: Fsm, nodeId: string, drivers: readonly Driver[], log: Logger) {
    this.config = config
    this.fsm = fsm
    this.nodeId = nodeId
    this.log = log
    this.#drivers = drivers
    const proposer = new LocalProposer(fsm)
    this.ops = new ClusterOps(proposer, fsm.state)
    this.#broker = new EvalBroker(fsm, proposer, consoleLogger('scheduler'))
    this.client = new Client({ fsm, writer: this.ops, nodeId, dataDir: config.dataDir, drivers, log: consoleLogger('client') })
  }

  static async open(config: AgentConfig): Promise<Agent> {
    await mkdir(config.dataDir, { recursive: true })
    const nodeId = await loadOrCreateNodeId(config.dataDir)
    const fsm = await Fsm.open(join(config.dataDir, 'state'), { syncWrites: true })
    const drivers = config.drivers ?? [new DockerDriver(), new ExecDriver({ stateDir: join(config.dataDir, 'exec') })]
    return new Agent(config, fsm, nodeId, drivers, config.log ?? consoleLogger('agent'))
  }

  /** Registers this node, re-attaches to running tasks, starts scheduling. */
  async start(): Promise<void> {
    const fp = await fingerprint(this.#drivers)
    const existing = this.fsm.state.get('nodes', this.nodeId)
    const duplicate = this.fsm.state.list('nodes').find((n) => n.name === this.config.name && n.id !== this.nodeId && n.status !== 'down')
    if (duplicate) throw new Error(`a node named "${this.config.name}" already exists (${duplicate.id}); choose another --name`)
    await this.ops.registerNode({
      id: this.nodeId, name: this.config.name, address: this.config.bindHost, http: this.config.http,
      status: 'ready', statusDescription: '', eligible: existing?.eligible ?? true,
      drivers: fp.drivers, resources: fp.resources, attributes: fp.attributes, meta: existing?.meta ?? {},
      portRange: DEFAULT_PORT_RANGE,
    })
    this.log.info(`node ${this.config.name} (${this.nodeId}) ready: drivers [${fp.drivers.join(', ')}], ${fp.resources.cpu} MHz, ${fp.resources.memoryMB} MB`)
    await this.client.start()
    this.#broker.start()
  }

  driver(name: string): Driver {
    const d = this.#drivers.find((x) => x.name === name)
    if (!d) throw new Error(`driver "${name}" is not loaded on this agent`)
    return d
  }

  async close(): Promise<void> {
    this.#broker.stop()
    await this.client.close()
    await this.fsm.close()
  }
}

async function loadOrCreateNodeId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'node-id')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const id = randomUUID()
    await writeFile(file, `${id}\n`)
    return id
  }
}

export function defaultNodeName(): string {
  return os.hostname()
}
