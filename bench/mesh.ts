// Throughput and added latency of the load-balancing mesh, side by side:
//   (a) straight at one busybox httpd container's published port,
//   (b) through Shoal's mesh port (3 instances, round-robin) on the kernel data path (iptables DNAT),
//   (c) the same port on the user-space proxy (the agent restarted with --mesh-datapath userspace),
//   (d) through Docker Swarm's routing mesh (`docker service create --replicas 3 --publish`).
//
//   node bench/mesh.ts [--duration 6] [--cooldown 70] [--connections 32] [--no-swarm] [--host 127.0.12.50]
//
// wrk per target: a throughput run (--connections, 2 threads) and a latency
// run (1 connection, so queueing does not hide the proxy's own cost). busybox
// httpd closes every connection, so each request is a new TCP connection
// through the proxy: the worst case for a proxy. All of wrk's connections come
// from one address, so at ~3,000 connections/s its 28k ephemeral ports wrap in
// ~9 s and new connections meet the TIME_WAIT sockets and conntrack entries of
// earlier ones with the same ports (SYNs dropped, retried after 1 s): runs are
// 6 s, and each throughput run waits (up to --cooldown s) for the host's
// TIME_WAIT sockets of the runs before it to expire, else the target measured
// second pays for the first. SYN retransmits during each run are shown. Swarm mode is switched on
// only if it was off, and the engine is left as found. Results go to
// bench/results/mesh-<time>.json; docs/benchmarks-mesh.md discusses them.
// Next to the wall-clock figures, per request of each throughput run: the CPU
// time (utime+stime, children included, from /proc) of the agent, and of the
// whole request path (wrk, the agent, the instances' docker-proxy processes
// and httpd with its per-connection children; the kernel's work on loopback
// is mostly charged to these processes): figures that other sessions' load
// on a shared machine does not inflate, unlike req/s. And the load average.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AgentProcess, eventually, freePort, ROOT, runCli, tempDir } from '../test/harness/agent.ts'
import { benchCli, parseBenchFlags } from './lib/flags.ts'
import { statCpuMs } from './lib/proc.ts'

const run = promisify(execFile)
const USAGE = 'usage: node bench/mesh.ts [--duration 6] [--cooldown 70] [--connections 32] [--no-swarm] [--host 127.0.12.50]'
const cli = benchCli('bench:mesh', USAGE)
const values = parseBenchFlags('bench:mesh', USAGE, {
  duration: { type: 'string', default: '6' },
  cooldown: { type: 'string', default: '70' },
  connections: { type: 'string', default: '32' },
  'no-swarm': { type: 'boolean', default: false },
  host: { type: 'string', default: '127.0.12.50' },
})
const DURATION = cli.count('duration', values.duration, 1)
const COOLDOWN_S = cli.nonNegative('cooldown', values.cooldown)
const CONNECTIONS = cli.count('connections', values.connections, 1)
if (!/^127\.\d+\.\d+\.\d+$/.test(values.host)) cli.die(`--host: expected a loopback IPv4 address, got "${values.host}"`)
const IMAGE = process.env.SHOAL_TEST_IMAGE ?? 'shoal-test/busybox:latest'
const HOST = values.host
const SWARM_SERVICE = `shoal-bench-mesh-${process.pid}`
const HTTPD = 'hostname > /www/index.html; exec /bin/httpd -f -p 8080 -h /www'
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`)

interface WrkResult { rps: number; p50: number; p90: number; p99: number; errors: number; requests: number }
/** CPU time spent during a throughput run: the agent's, and the request path's (wrk, agent, docker-proxy, httpd). */
interface CpuUse { agentMs: number; pathMs: number; load: number; synRetrans: number }
interface TargetResult { name: string; url: string; throughput?: WrkResult; latency?: WrkResult; cpu?: CpuUse; unavailable?: string }

async function procCpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  return statCpuMs(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''), true)
}
/** The processes requests go through: the instances' httpd (pid 1 of each container) and docker-proxy (on HOST). */
let pathPids: number[] = []
async function findPathPids(containers: string[]): Promise<number[]> {
  const pids = containers.length ? (await docker('inspect', '-f', '{{.State.Pid}}', ...containers)).split('\n').map(Number) : []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')
    if (cmd[0]?.endsWith('docker-proxy') && cmd.includes('tcp') && cmd[cmd.indexOf('-host-ip') + 1] === HOST) pids.push(Number(entry))
  }
  return pids
}
async function pathCpuMs(agentPid: number | undefined): Promise<number> {
  let n = await procCpuMs(agentPid)
  for (const pid of pathPids) n += await procCpuMs(pid)
  return n
}

function toMs(v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : NaN
}

async function wrk(url: string, connections: number, threads: number, seconds: number): Promise<WrkResult & { cpuMs: number }> {
  // Through a shell that prints its own stat after waiting for wrk: its children's CPU is wrk's.
  const { stdout } = await run('sh', ['-c', 'wrk "$@"; s=$?; echo; cat /proc/$$/stat; exit $s', 'sh',
    '-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', url], { maxBuffer: 1 << 20 })
  const cpuMs = statCpuMs(stdout.trimEnd().split('\n').pop() ?? '', true)
  const pct = (p: string) => {
    const m = stdout.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'))
    return m ? toMs(m[1]!, m[2]!) : NaN
  }
  const socket = stdout.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
  const non2xx = Number(stdout.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0)
  const errors = non2xx + (socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0)
  return {
    rps: Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN),
    requests: Number(stdout.match(/(\d+) requests in/)?.[1] ?? NaN),
    p50: pct('50'), p90: pct('90'), p99: pct('99'), errors, cpuMs,
  }
}

/** TIME_WAIT sockets on the host (/proc/net/sockstat). */
async function timeWait(): Promise<number> {
  return Number(/ tw (\d+)/.exec(await readFile('/proc/net/sockstat', 'utf8'))?.[1] ?? 0)
}
/** The host's SYN retransmits so far (TcpExt TCPSynRetrans). */
async function synRetrans(): Promise<number> {
  const [names, vals] = (await readFile('/proc/net/netstat', 'utf8')).split('\n').filter((l) => l.startsWith('TcpExt:')).map((l) => l.split(' '))
  return Number(vals?.[names?.indexOf('TCPSynRetrans') ?? -1] ?? NaN)
}
/** Waits for the TIME_WAIT sockets earlier runs left to expire (60 s), up to COOLDOWN_S. */
async function cooldown(): Promise<void> {
  const until = Date.now() + COOLDOWN_S * 1000
  const tw = await timeWait()
  if (tw < 1000) return
  log(`cool-down: ${tw} TIME_WAIT sockets`)
  while (Date.now() < until && (await timeWait()) >= 1000) await new Promise((r) => setTimeout(r, 1000))
}

async function measure(name: string, url: string, agentPid?: number): Promise<TargetResult> {
  log(`${name}: warm-up`)
  await wrk(url, 4, 1, 2)
  await cooldown()
  log(`${name}: throughput (${CONNECTIONS} connections, ${DURATION}s)`)
  const [agent0, path0, syn0] = [await procCpuMs(agentPid), await pathCpuMs(agentPid), await synRetrans()]
  const throughput = await wrk(url, CONNECTIONS, 2, DURATION)
  const cpu = {
    agentMs: (await procCpuMs(agentPid)) - agent0, pathMs: (await pathCpuMs(agentPid)) - path0 + throughput.cpuMs,
    load: os.loadavg()[0]!, synRetrans: (await synRetrans()) - syn0,
  }
  log(`${name}: latency (1 connection, ${DURATION}s)`)
  const latency = await wrk(url, 1, 1, DURATION)
  return { name, url, throughput, latency, cpu }
}

async function reachable(host: string, port: number): Promise<boolean> {
  const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2_000) }).catch(() => null)
  return res?.ok === true
}

function hostAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.')) return a.address
  }
  return undefined
}

async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 1 << 20 })).stdout.trim()
}

/** Swarm's routing mesh: on only for this run (if it was off), with the service removed after. */
async function swarm(port: number): Promise<TargetResult> {
  const name = 'swarm routing mesh'
  const address = hostAddress()
  const base = { name, url: `http://${address}:${port}/` }
  if (!existsSync('/proc/net/ip_vs')) {
    return { ...base, unavailable: 'this kernel has no IPVS (/proc/net/ip_vs missing), which the routing mesh needs: published ports accept nothing' }
  }
  if (!address) return { ...base, unavailable: 'no non-loopback IPv4 address to advertise' }
  const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}')
  const hadGwbridge = (await docker('network', 'ls', '--format', '{{.Name}}')).split('\n').includes('docker_gwbridge')
  const initialised = state === 'inactive'
  try {
    if (initialised) await docker('swarm', 'init', '--advertise-addr', address)
    await docker('service', 'create', '--detach=false', '--name', SWARM_SERVICE, '--replicas', '3',
      '--publish', `published=${port},target=8080`, IMAGE, '/bin/sh', '-c', HTTPD)
    const ok = await eventually(() => reachable(address, port), { what: 'swarm published port answers', timeoutMs: 30_000 }).catch(() => false)
    if (!ok) return { ...base, unavailable: 'the service converged but its published port never answered' }
    return await measure(name, base.url)
  } finally {
    await docker('service', 'rm', SWARM_SERVICE).catch(() => undefined)
    if (initialised) {
      await docker('swarm', 'leave', '--force').catch(() => undefined)
      if (!hadGwbridge) await docker('network', 'rm', 'docker_gwbridge').catch(() => undefined)
    }
  }
}

async function freeOn(host: string): Promise<number> {
  for (;;) {
    const p = await freePort(host)
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false))
      s.listen(p, '0.0.0.0', () => s.close(() => resolve(true)))
    })
    if (free) return p
  }
}

const dir = await tempDir('bench-mesh')
let agent: AgentProcess | undefined
let nodeId: string | undefined
const results: TargetResult[] = []
try {
  const httpPort = await freePort()
  const startAgent = (datapath: string) => AgentProcess.start({ dataDir: join(dir, 'data'), name: 'bench-mesh', bind: HOST, httpPort, extraArgs: ['--mesh-datapath', datapath] })
  agent = await startAgent('auto')
  const meshPort = await freeOn(HOST)
  const file = join(dir, 'web.json')
  await writeFile(file, JSON.stringify({ job: { web: { group: { www: {
    count: 3,
    network: { port: { http: { to: 8080 } } },
    service: [{ name: 'web', port: 'http', checks: [{ type: 'http', port: 'http', interval: '2s', timeout: '1s' }], publish: { port: meshPort } }],
    task: { httpd: { driver: 'docker', resources: { cpu: 100, memory: 32 }, config: { image: IMAGE, command: '/bin/sh', args: ['-c', HTTPD], ports: ['http'] } } },
  } } } } }))
  const r = await runCli(['job', 'run', file], agent.address)
  if (r.code !== 0) throw new Error(`job run: ${r.stdout}${r.stderr}`)
  const instances = await eventually(async () => {
    const s = await agent!.get<{ healthy: boolean; address: string; port: number }[]>('/v1/service/web')
    const healthy = s.filter((i) => i.healthy)
    return healthy.length === 3 && healthy
  }, { what: '3 healthy instances', timeoutMs: 60_000 })
  const direct = instances[0]!
  await eventually(() => reachable(direct.address, direct.port), { what: `direct ${direct.address}:${direct.port} answers`, timeoutMs: 30_000 })
  nodeId = (await agent.get<{ nodeId: string }>('/v1/agent/self')).nodeId
  pathPids = await findPathPids((await docker('ps', '-q', '--filter', `label=shoal.node=${nodeId}`)).split('\n').filter(Boolean))
  /** The agent's web listener on `datapath` with 3 instances; else why not. */
  const listenerOn = async (datapath: string): Promise<string | null> => {
    const st = await agent!.get<{ datapath: { reason?: string }; listeners: { service: string; datapath: string; datapathReason?: string; instances: number }[] }>('/v1/agent/mesh')
    const l = st.listeners.find((x) => x.service === 'web')
    if (l?.datapath === datapath && l.instances === 3) return null
    return l?.datapathReason ?? st.datapath.reason ?? `listener ${JSON.stringify(l)}`
  }
  const meshUrl = `http://${HOST}:${meshPort}/`
  results.push(await measure('direct to one container', `http://${direct.address}:${direct.port}/`, agent.proc.pid))
  // Not root, no iptables: the row says why instead of a figure.
  const kernelWhyNot = await eventually(async () => (await listenerOn('kernel')) === null, { what: 'kernel listener', timeoutMs: 10_000 })
    .then(() => null, () => listenerOn('kernel'))
  results.push(kernelWhyNot === null
    ? await measure('shoal mesh, kernel data path', meshUrl, agent.proc.pid)
    : { name: 'shoal mesh, kernel data path', url: meshUrl, unavailable: kernelWhyNot })
  // The same agent and containers, the data path switched: restarted (tasks keep running) on the user-space proxy.
  await agent.kill('SIGTERM')
  agent = await startAgent('userspace')
  await eventually(async () => (await listenerOn('userspace')) === null, { what: 'user-space listener with 3 instances', timeoutMs: 60_000 })
  results.push(await measure('shoal mesh, user-space proxy', meshUrl, agent.proc.pid))
  pathPids = [] // Swarm's path (IPVS, its own containers) is not Shoal's: only wrk's CPU would be counted
  if (!values['no-swarm']) results.push(await swarm(await freeOn('0.0.0.0')))
  await runCli(['job', 'stop', 'web'], agent.address)
  await eventually(async () => (await agent!.get<{ clientStatus: string }[]>('/v1/job/web/allocations')).every((a) => a.clientStatus !== 'running'),
    { what: 'web stopped', timeoutMs: 30_000 }).catch(() => undefined)
} finally {
  await agent?.kill('SIGTERM')
  // Tasks outlive the agent: whatever the run left (a failure before "job stop") goes too.
  if (nodeId) for (const c of (await docker('ps', '-aq', '--filter', `label=shoal.node=${nodeId}`).catch(() => '')).split('\n').filter(Boolean)) await docker('rm', '-f', c).catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
}

const f = (n: number | undefined, d = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d))
const directLat = results[0]?.latency
console.log(`\nmesh benchmark: ${os.cpus().length} CPUs, ${DURATION}s per run, wrk, busybox httpd (a new connection per request)\n`)
const directRps = results[0]?.throughput?.rps
console.log('| target | req/s (' + CONNECTIONS + ' conns) | × direct | errors | p50 ms (1 conn) | p99 ms (1 conn) | added p50 ms | added p99 ms | agent CPU µs/req | path CPU µs/req | SYN retrans | load (1 min) |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const t of results) {
  if (t.unavailable) {
    console.log(`| ${t.name} | unavailable: ${t.unavailable} | | | | | | | | | | |`)
    continue
  }
  const added50 = t === results[0] ? undefined : (t.latency!.p50 - directLat!.p50)
  const added99 = t === results[0] ? undefined : (t.latency!.p99 - directLat!.p99)
  const reqs = t.throughput!.requests
  const perReq = (ms: number | undefined) => (ms === undefined || !reqs ? undefined : (ms * 1000) / reqs)
  console.log(`| ${t.name} | ${f(t.throughput!.rps, 0)} | ${f(directRps ? t.throughput!.rps / directRps : undefined)} | ${t.throughput!.errors + t.latency!.errors} | ${f(t.latency!.p50, 3)} | ${f(t.latency!.p99, 3)} | ${f(added50, 3)} | ${f(added99, 3)} | ${f(perReq(t.cpu?.agentMs), 0)} | ${f(perReq(t.cpu?.pathMs), 0)} | ${t.cpu?.synRetrans ?? '-'} | ${f(t.cpu?.load)} |`)
}
await mkdir(join(ROOT, 'bench/results'), { recursive: true })
const out = join(ROOT, 'bench/results', `mesh-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await writeFile(out, JSON.stringify({ cpus: os.cpus().length, duration: DURATION, connections: CONNECTIONS, results }, null, 2))
console.log(`\nresults: ${out}`)
