// `shoal agent`: its flags and what it does, without @oclif/core. A long-lived
// agent that kept oclif's ~160 modules resident would pay ~5 MiB of RSS for
// parsing its command line once, so bin/shoal.js runs a plain agent command
// line straight through here. Help, errors and anything else unusual go
// through oclif, which reads the same flag table (src/cli/flags.ts).
import os from 'node:os'
import { join } from 'node:path'
import type { Agent } from '../agent/agent.ts'
import { DEFAULT_HTTP_PORT, DEFAULT_P2P_PORT } from '../agent/defaults.ts'
import { DEFAULT_DNS_DOMAIN, DEFAULT_DNS_TTL } from '../dns/answer.ts'
import { DnsServer, stateCatalog, type HostPort } from '../dns/server.ts'
import { DATAPATH_CHOICES, type DatapathChoice } from '../mesh/nat-rules.ts'
import { GC_INTERVAL_MS, GC_THRESHOLD_MS } from '../fsm/gc.ts'
import { DURATION_HINT, formatDuration, tryParseDuration } from '../jobspec/duration.ts'
import { fail as failWith, plainIO } from './output.ts'
import { parsePlainArgs, type FlagSpec, type FlagsOf } from './flags.ts'

const DEFAULT_DNS_PORT = 8600

export const AGENT_FLAGS = {
  dev: { type: 'boolean', description: 'run a one-node cluster (server and client, no networking)', default: false },
  'data-dir': { type: 'string', description: 'where state, node identity and allocation dirs live (default: ~/.shoal, or <tmp>/shoal-dev with --dev)' },
  http: { type: 'string', description: `HOST:PORT of the HTTP API (default 127.0.0.1:${DEFAULT_HTTP_PORT})`, default: `127.0.0.1:${DEFAULT_HTTP_PORT}` },
  bind: { type: 'string', description: `HOST[:PORT] libp2p listens on (default port ${DEFAULT_P2P_PORT}); allocations publish ports on HOST`, default: '127.0.0.1' },
  advertise: { type: 'string', description: 'address other members reach this agent at (multiaddr, host:port, or host for the --bind port), when --bind is not reachable as is (NAT, 0.0.0.0)', multiple: true, default: [] },
  join: { type: 'string', description: `a member to join through (multiaddr, host:port, or host for port ${DEFAULT_P2P_PORT}); repeatable`, multiple: true, default: [] },
  voters: { type: 'integer', description: 'Raft voters the leader keeps (1, 3, 5 or 7)', default: 3 },
  name: { type: 'string', description: 'node name, unique in the cluster (default: the hostname)' },
  meta: { type: 'string', description: 'node attribute KEY=VALUE for constraints (${meta.KEY}); repeatable', multiple: true, default: [] },
  'snapshot-threshold': { type: 'integer', description: 'applied Raft entries between snapshots (log compaction), at least; more while the log is smaller than the last snapshot, up to 8 times as many', default: 8192, min: 1 },
  'cluster-key-file': { type: 'string', description: 'pre-shared cluster key (from "shoal keygen"); members must all use the same' },
  'dns-addr': { type: 'string', description: `HOST:PORT the DNS server answers on (UDP and TCP), or "off" (default: the --bind host, port ${DEFAULT_DNS_PORT})` },
  'dns-domain': { type: 'string', description: 'domain of service names: NAME.service.DOMAIN', default: DEFAULT_DNS_DOMAIN },
  'mesh-datapath': { type: 'string', description: 'how published service ports are served: "kernel" (iptables NAT rules; needs root), "userspace" (the agent\'s proxy), or "auto" (the kernel when it can)', default: 'auto' },
  'dns-recursor': { type: 'string', description: 'HOST[:PORT] of a resolver for names outside the domain (default: refused); repeatable, tried in order', multiple: true, default: [] },
  'gc-threshold': { type: 'string', description: `how long finished evaluations and allocations, and stopped jobs, stay in the state before the leader removes them, as Nomad's eval_gc_threshold and job_gc_threshold (default ${formatDuration(GC_THRESHOLD_MS)})` },
  'gc-interval': { type: 'string', description: `how often the leader looks for state to remove, at least 1s (default ${formatDuration(GC_INTERVAL_MS)})` },
} as const satisfies Record<string, FlagSpec>

/** The agent's parsed flags, derived from AGENT_FLAGS so the two cannot drift. */
export type AgentFlags = FlagsOf<typeof AGENT_FLAGS>

/** The flags of a plain agent command line, or undefined for anything oclif should parse (see parsePlainArgs). */
export function parseAgentArgs(argv: readonly string[]): AgentFlags | undefined {
  return parsePlainArgs(AGENT_FLAGS, argv)?.flags
}

function hostPort(value: string, flag: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(value)
  const port = m?.[2] === undefined ? defaultPort : Number(m[2])
  if (!m || !m[1] || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--${flag}: "${value}" is not HOST or HOST:PORT (port 0-65535)`)
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

const DNS_DOMAIN_RE = /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/** The DNS server's settings from the flags; undefined when turned off. */
function dnsSettings(flags: { 'dns-addr'?: string | undefined; 'dns-domain': string; 'dns-recursor': string[] }, bindHost: string) {
  const explicit = flags['dns-addr'] !== undefined
  if (flags['dns-addr'] === 'off') return undefined
  const addr = explicit ? hostPort(flags['dns-addr']!, 'dns-addr', DEFAULT_DNS_PORT) : { host: bindHost, port: DEFAULT_DNS_PORT }
  const domain = flags['dns-domain'].toLowerCase().replace(/\.$/, '')
  if (!DNS_DOMAIN_RE.test(domain)) throw new Error(`--dns-domain: "${flags['dns-domain']}" is not a domain name (labels of letters, digits and "-")`)
  const recursors: HostPort[] = flags['dns-recursor'].map((r) => {
    const hp = hostPort(r, 'dns-recursor', 53)
    if (hp.port === 0) throw new Error(`--dns-recursor: "${r}" needs a port other than 0`)
    return hp
  })
  return { ...addr, explicit, domain, recursors }
}

/** The state GC's settings from the flags (see src/fsm/gc.ts). */
function gcSettings(flags: { 'gc-threshold'?: string | undefined; 'gc-interval'?: string | undefined }): { gcThresholdMs: number; gcIntervalMs: number } {
  const duration = (flag: 'gc-threshold' | 'gc-interval', fallback: number) => {
    const value = flags[flag]
    if (value === undefined) return fallback
    const ms = tryParseDuration(value)
    if (ms === undefined) throw new Error(`--${flag}: "${value}" ${DURATION_HINT}`)
    return ms
  }
  const gcThresholdMs = duration('gc-threshold', GC_THRESHOLD_MS)
  const gcIntervalMs = duration('gc-interval', GC_INTERVAL_MS)
  // Shorter would have the leader propose collections back to back.
  if (gcIntervalMs < 1000) throw new Error(`--gc-interval: must be at least 1s (got "${flags['gc-interval']}")`)
  return { gcThresholdMs, gcIntervalMs }
}

/** Runs the agent until SIGINT or SIGTERM; `fail` prints `Error: message` and exits 1. */
export async function runAgent(flags: AgentFlags, fail: (message: string) => never): Promise<never> {
  let http: { host: string; port: number }
  let bind: { host: string; port: number }
  let dns: ReturnType<typeof dnsSettings>
  let gc: ReturnType<typeof gcSettings>
  try {
    http = hostPort(flags.http, 'http', DEFAULT_HTTP_PORT)
    bind = hostPort(flags.bind, 'bind', DEFAULT_P2P_PORT)
    dns = dnsSettings(flags, bind.host)
    gc = gcSettings(flags)
  } catch (err) {
    fail((err as Error).message)
  }
  const meta: Record<string, string> = {}
  for (const kv of flags.meta) {
    const m = /^([A-Za-z0-9_.-]+)=(.*)$/.exec(kv)
    if (!m) fail(`--meta: "${kv}" is not KEY=VALUE (key of letters, digits, "_", "-", ".")`)
    meta[m[1]!] = m[2]!
  }
  if (![1, 3, 5, 7].includes(flags.voters)) fail(`--voters: must be 1, 3, 5 or 7 (got ${flags.voters})`)
  const meshDatapath = flags['mesh-datapath'] as DatapathChoice
  if (!DATAPATH_CHOICES.includes(meshDatapath)) fail(`--mesh-datapath: must be ${DATAPATH_CHOICES.join(', ')} (got "${flags['mesh-datapath']}")`)
  if (flags.dev && flags.join.length > 0) fail('--join: a --dev agent is a one-node cluster and cannot join others')
  if (!flags.dev && flags.join.length + flags.advertise.length > 0) {
    // Checked now, not after the join has been retried for 30 s.
    const { toMultiaddr } = await import('../gossip/host.ts')
    for (const [flag, values, port] of [['join', flags.join, DEFAULT_P2P_PORT], ['advertise', flags.advertise, bind.port || undefined]] as const) {
      for (const v of values) {
        try {
          toMultiaddr(v, port)
        } catch (err) {
          fail(`--${flag}: ${(err as Error).message}`)
        }
      }
    }
  }
  const [{ Agent, defaultNodeName }, { ApiServer }, { readClusterKey }, { processIdleMemoryReducer }] = await Promise.all([
    import('../agent/agent.ts'), import('../api/server.ts'), import('../gossip/cluster-key.ts'), import('../agent/idle-memory.ts'),
  ])
  let clusterKey: Uint8Array | undefined
  if (flags['cluster-key-file']) {
    try {
      clusterKey = await readClusterKey(flags['cluster-key-file'])
    } catch (err) {
      fail((err as Error).message)
    }
  }
  const dataDir = flags['data-dir'] ?? (flags.dev ? join(os.tmpdir(), 'shoal-dev') : join(os.homedir(), '.shoal'))
  let agent: Agent
  try {
    agent = await Agent.open({
      dataDir, name: flags.name ?? defaultNodeName(), dev: flags.dev, bindHost: bind.host, bindPort: bind.port,
      http: `${http.host}:${http.port}`, join: flags.join, voters: flags.voters, meta, snapshotThreshold: flags['snapshot-threshold'], meshDatapath, advertise: flags.advertise, ...gc, ...(clusterKey ? { clusterKey } : {}),
    })
  } catch (err) {
    fail(`cannot start the agent: ${(err as Error).message}`)
  }
  const api = new ApiServer(agent)
  let addr
  try {
    addr = await api.listen(http.host, http.port)
  } catch (err) {
    await agent.close()
    fail(`--http: cannot listen on ${http.host}:${http.port}: ${(err as Error).message}`)
  }
  agent.config.http = `${http.host}:${addr.port}`
  try {
    await agent.start()
  } catch (err) {
    await api.close()
    await agent.close()
    fail((err as Error).message)
  }
  let dnsServer: DnsServer | undefined
  if (dns) {
    const server = new DnsServer({ ...dns, ttl: DEFAULT_DNS_TTL, catalog: stateCatalog(agent.fsm.state), log: agent.log })
    try {
      const a = await server.listen()
      agent.config.dns = `${dns.host}:${a.port}`
      dnsServer = server
      agent.log.info(`DNS on ${agent.config.dns} (udp and tcp): *.service.${dns.domain}${dns.recursors.length ? `, other names forwarded to ${dns.recursors.map((r) => `${r.host}:${r.port}`).join(', ')}` : ', other names refused'}`)
    } catch (err) {
      const why = `cannot listen on ${dns.host}:${dns.port}: ${(err as Error).message}`
      if (dns.explicit) {
        await api.close()
        await agent.close()
        fail(`--dns-addr: ${why}`)
      }
      agent.log.warn(`DNS is off: ${why} (set --dns-addr to another address, or "off")`)
    }
  }
  agent.log.info(`HTTP API on http://${agent.config.http}, data dir ${dataDir}${agent.p2pAddrs.length ? `, p2p ${agent.p2pAddrs.join(' ')}` : ''}`)
  const idleMemory = processIdleMemoryReducer()
  idleMemory?.start()
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    agent.log.info(`${signal}: shutting down (tasks keep running)`)
    idleMemory?.stop()
    if (signal === 'SIGTERM') {
      await agent.transferLeadershipAway()
      await agent.leaveGossip()
    }
    await dnsServer?.close()
    await api.close()
    await agent.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  return new Promise<never>(() => undefined)
}

/**
 * bin/shoal.js's way to `shoal agent` without oclif: false when the command
 * line is not one parseAgentArgs takes (the caller hands it to oclif).
 */
export async function agentMain(argv: readonly string[]): Promise<boolean> {
  const flags = parseAgentArgs(argv)
  if (!flags) return false
  await runAgent(flags, (message) => failWith(plainIO, message))
  return true
}
