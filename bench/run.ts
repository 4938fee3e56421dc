// Consensus benchmark: Shoal's replicated variables store vs etcd, 3 members
// each on loopback. `npm run bench [-- --quick | --duration S | --only shoal|etcd]`
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanUpOnExit, type Cluster } from './lib/cluster.ts'
import { EtcdCluster } from './lib/etcd.ts'
import { failoverTrial, stabilityRun } from './lib/faults.ts'
import { benchCli, parseBenchFlags } from './lib/flags.ts'
import { closedLoop } from './lib/load.ts'
import { summarizeFailover, table, targets, type SystemResults } from './lib/report.ts'
import { ShoalCluster } from './lib/shoal.ts'

const USAGE = `usage: npm run bench -- [--quick] [--duration S] [--warmup S] [--stability S] [--trials N] [--only shoal|etcd] [--etcd PATH] [--profile DIR] [--net A.B.C]
  --quick        ~1-minute smoke run per system (2 s per level after 0.5 s warm-up, 15 s loaded run)
  --duration S   measured seconds per concurrency level (default 10)
  --warmup S     warm-up seconds before each level (default 2)
  --stability S  length of the fault-free loaded run (default 60)
  --trials N     leader failover trials per system (default 5; 0 skips them)
  --only NAME    run one system only
  --etcd PATH    the etcd binary (default: etcd on PATH, else /usr/bin/etcd)
  --profile DIR  run the Shoal agents with --cpu-prof; profiles land in DIR when they stop
                 (killed leaders lose theirs: combine with --trials 0)
  --net A.B.C    loopback /24 for the members (default 127.0.0): Shoal on .71-.73, etcd on .61-.63`

const FLAGS = {
  quick: { type: 'boolean', default: false },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  stability: { type: 'string' },
  trials: { type: 'string' },
  only: { type: 'string' },
  etcd: { type: 'string' },
  profile: { type: 'string' },
  net: { type: 'string', default: '127.0.0' },
} as const

const cli = benchCli('bench', USAGE)
const { die } = cli
const flags = parseBenchFlags('bench', USAGE, FLAGS)
const seconds = (flag: string, v: string | undefined, dflt: number) => (v === undefined ? dflt : cli.positive(flag, v))
const count = (flag: string, v: string | undefined, dflt: number) => (v === undefined ? dflt : cli.count(flag, v, 0))

const quick = flags.quick
const opts = {
  quick,
  durationS: seconds('duration', flags.duration, quick ? 2 : 10),
  warmupS: seconds('warmup', flags.warmup, quick ? 0.5 : 2),
  stabilityS: seconds('stability', flags.stability, quick ? 15 : 60),
  trials: count('trials', flags.trials, 5),
  levels: [1, 16, 64],
  stabilityClients: 64,
  valueBytes: 256,
}
if (flags.only && !['shoal', 'etcd'].includes(flags.only)) die(`--only: expected shoal or etcd, got "${flags.only}"`)
if (!/^127\.\d{1,3}\.\d{1,3}$/.test(flags.net)) die(`--net: expected the first three parts of a loopback address like 127.0.6, got "${flags.net}"`)
const hosts = (first: number) => [0, 1, 2].map((i) => `${flags.net}.${first + i}`)
const systems = flags.only ? [flags.only] : ['shoal', 'etcd']

function findEtcd(): string {
  if (flags.etcd) return flags.etcd
  try {
    return execFileSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).trim() || '/usr/bin/etcd'
  } catch {
    return '/usr/bin/etcd'
  }
}
const etcdBin = findEtcd()
let etcdVersion = ''
if (systems.includes('etcd')) {
  if (!existsSync(etcdBin)) die(`etcd not found at ${etcdBin} (install it: apt-get install -y etcd-server, or pass --etcd PATH)`)
  try {
    etcdVersion = execFileSync(etcdBin, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim()
  } catch (err) {
    die(`cannot run ${etcdBin} --version: ${(err as Error).message}`)
  }
}

// A 256-byte ASCII value, the same for every write.
const VALUE = Array.from({ length: opts.valueBytes }, (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789'[(i * 7) % 36]).join('')

const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`)

// Cleanup: stop running clusters on normal exit, errors, Ctrl-C and SIGTERM;
// SIGKILL whatever is left (and remove temp dirs) when the process exits.
const running = new Set<Cluster>()
cleanUpOnExit(() => Promise.all([...running].map((c) => c.stop().catch(() => undefined))), log, 'stopping the clusters')

async function benchSystem(cluster: Cluster): Promise<SystemResults> {
  const name = cluster.system
  log(`${name}: starting 3 members`)
  running.add(cluster)
  try {
    await cluster.start()
  } catch (err) {
    await cluster.stop().catch(() => undefined)
    running.delete(cluster)
    die(`cannot start the ${name} cluster: ${(err as Error).message}`)
  }
  try {
    const res: SystemResults = { system: name, settings: cluster.settings, puts: [], failover: summarizeFailover([]), stability: null, loadAvg: { start: os.loadavg()[0]!, end: NaN } }
    const leader = await cluster.waitHealthy()
    log(`${name}: leader is ${leader.name}`)
    const levels: { label: string; clients: number; followers?: boolean }[] = [
      ...opts.levels.map((c) => ({ label: c === 1 ? '1 client' : `${c} clients`, clients: c })),
      { label: '64 clients via followers', clients: 64, followers: true },
    ]
    for (const level of levels) {
      const l = await cluster.waitHealthy()
      const targets = level.followers ? cluster.members.filter((m) => m !== l) : [l]
      log(`${name}: var put, ${level.label} (${opts.warmupS} s warm-up + ${opts.durationS} s)`)
      const result = await closedLoop({ cluster, targets, clients: level.clients, warmupMs: opts.warmupS * 1000, durationMs: opts.durationS * 1000, value: VALUE })
      log(`${name}:   ${result.opsPerSec.toFixed(0)} ops/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${result.errors ? `, ${result.errors} errors` : ''}`)
      res.puts.push({ label: level.label, result })
    }
    log(`${name}: loaded run, ${opts.stabilityClients} clients for ${opts.stabilityS} s, watching the leader`)
    res.stability = await stabilityRun(cluster, opts.stabilityClients, opts.stabilityS * 1000, VALUE)
    log(`${name}:   leader changes: ${res.stability.leaderChanges}, elections: ${res.stability.elections ?? '-'}`)
    const trials = []
    for (let i = 1; i <= opts.trials; i++) {
      const t = await failoverTrial(cluster, VALUE, i)
      log(`${name}: failover ${i}/${opts.trials}: killed ${t.killed}, first write after ${t.ms === null ? 'never (gave up)' : `${t.ms.toFixed(0)} ms`}${t.newLeader ? `, new leader ${t.newLeader}` : ''}`)
      trials.push(t)
    }
    res.failover = summarizeFailover(trials)
    res.loadAvg.end = os.loadavg()[0]!
    return res
  } finally {
    await cluster.stop()
    running.delete(cluster)
  }
}

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const started = new Date()
  log(`consensus benchmark${quick ? ' (--quick)' : ''}: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load avg ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`)
  const results: Partial<Record<'shoal' | 'etcd', SystemResults>> = {}
  // One system at a time, so neither cluster's background work disturbs the other's figures.
  if (systems.includes('shoal')) {
    const profile = flags.profile ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${resolve(flags.profile)}` }, graceful: true } : {}
    results.shoal = await benchSystem(new ShoalCluster({ hosts: hosts(71), ...profile }))
  }
  if (systems.includes('etcd')) {
    results.etcd = await benchSystem(new EtcdCluster({ bin: etcdBin, hosts: hosts(61) }))
  }

  const header = [
    `Shoal vs etcd, 3 members each on loopback — ${started.toISOString()}`,
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; 1-min load avg (start → end):${
      Object.values(results).map((r) => ` ${r.system} ${r.loadAvg.start.toFixed(1)} → ${r.loadAvg.end.toFixed(1)}`).join(',')}`,
    `node ${process.version}${etcdVersion ? `, ${etcdVersion}` : ''}; closed loop, keep-alive HTTP, ${opts.warmupS} s warm-up + ${opts.durationS} s per level`,
    'shoal: Raft tick 50 ms, election 10-20 ticks (0.5-1 s), snapshot after 8192-65536 entries (once the log outweighs the last snapshot); PUT /v1/var/<path> to the leader',
    'etcd:  heartbeat 100 ms, election timeout 1000 ms, no auto-compaction (defaults); POST /v3/kv/put (JSON gateway) to the leader',
    '"via followers": the 64 clients split over the two followers, which forward to the leader',
  ].join('\n')
  console.log(`\n${header}\n\n${table({ ...results, clientsStability: opts.stabilityClients, stabilitySeconds: opts.stabilityS, trials: opts.trials })}`)

  const dir = join(root, 'bench/results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`)
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), loadavgAtEnd: os.loadavg(), node: process.version, etcd: etcdVersion }
  await writeFile(file, JSON.stringify({ date: started.toISOString(), machine, options: opts, results, targets: targets(results.shoal, results.etcd) }, null, 2) + '\n')
  console.log(`\nresults: ${file}`)
}

main().then(() => process.exit(0), (err: Error) => {
  log(`failed: ${err.stack ?? err.message}`)
  void Promise.all([...running].map((c) => c.stop().catch(() => undefined))).finally(() => process.exit(1))
})
