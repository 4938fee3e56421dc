// CPU per committed write on a 3-voter Shoal cluster: each member's
// utime+stime (all threads, from /proc) over the measured window, divided by
// the writes acknowledged in it. CPU time depends much less on what else runs
// on the machine than ops/s does. `node bench/cpu.ts [--clients N] [--rounds N]`
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { resolve } from 'node:path'
import { killAllSync } from './lib/cluster.ts'
import { benchCli, parseBenchFlags } from './lib/flags.ts'
import { statCpuMs } from './lib/proc.ts'
import { closedLoop } from './lib/load.ts'
import { ShoalCluster } from './lib/shoal.ts'

const USAGE = `usage: node bench/cpu.ts [--clients N] [--duration S] [--warmup S] [--rounds N] [--followers] [--net A.B.C]
                         [--profile DIR | --perf DIR] [--agent-args "ARGS"] [--node-options "FLAGS"]
  --clients N       concurrent writers (default 64)       --duration S  measured seconds per round (default 5)
  --warmup S        seconds before each window (default 1) --rounds N    rounds (default 3)
  --followers       write through the followers, not the leader
  --net A.B.C       loopback /24 of the members (default 127.0.0; they use .71-.73)
  --profile DIR     agents under --cpu-prof                 --perf DIR    perf record of each member per round
  --agent-args, --node-options   extra agent flags / V8 flags for the agents`
const cli = benchCli('bench:cpu', USAGE)
const flags = parseBenchFlags('bench:cpu', USAGE, {
  clients: { type: 'string', default: '64' },
  duration: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  rounds: { type: 'string', default: '3' },
  followers: { type: 'boolean', default: false },
  net: { type: 'string', default: '127.0.0' },
  profile: { type: 'string' },
  perf: { type: 'string' },
  'agent-args': { type: 'string' },
  'node-options': { type: 'string' },
})
if (!/^127\.\d{1,3}\.\d{1,3}$/.test(flags.net)) cli.die(`--net: expected the first three parts of a loopback address like 127.0.6, got "${flags.net}"`)
const clients = cli.count('clients', flags.clients, 1)
const durationMs = cli.positive('duration', flags.duration) * 1000
const warmupMs = cli.nonNegative('warmup', flags.warmup) * 1000
const rounds = cli.count('rounds', flags.rounds, 1)
const VALUE = Array.from({ length: 256 }, (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789'[(i * 7) % 36]).join('')

/** utime+stime of a process in µs. */
const cpuMicros = (pid: number) => statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1000

process.on('exit', killAllSync)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130))

const profile = flags.profile ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${resolve(flags.profile)}` }, graceful: true }
  : flags.perf ? { env: { NODE_OPTIONS: `--perf-basic-prof-only-functions ${flags['node-options'] ?? ''}` } }
  : flags['node-options'] ? { env: { NODE_OPTIONS: flags['node-options'] } } : {}
const agentArgs = flags['agent-args']?.split(' ').filter(Boolean) ?? []
const cluster = new ShoalCluster({ hosts: [71, 72, 73].map((n) => `${flags.net}.${n}`), agentArgs, ...profile })
await cluster.start()
try {
  for (let round = 1; round <= rounds; round++) {
    const leader = await cluster.waitHealthy()
    const members = [leader, ...cluster.members.filter((m) => m !== leader)]
    const pids = members.map((m) => cluster.members.find((x) => x === m)!.proc!.child.pid!)
    const targets = flags.followers ? members.slice(1) : [leader]
    let before: number[] = []
    let after: number[] = []
    let selfBefore = 0
    let selfAfter = 0
    const t1 = setTimeout(() => {
      before = pids.map(cpuMicros)
      selfBefore = process.cpuUsage().user + process.cpuUsage().system
      // --perf DIR: on-CPU samples of each member over the window (perf record; JS names from --perf-basic-prof).
      if (flags.perf) members.forEach((m, i) => spawn('perf', ['record', '-F', '997', '-g', '-e', 'cpu-clock', '-o', resolve(flags.perf!, `r${round}-${i === 0 ? 'leader' : `follower${i}`}.data`), '-p', String(pids[i]), '--', 'sleep', String(durationMs / 1000)], { stdio: 'ignore' }))
    }, warmupMs)
    const t2 = setTimeout(() => { after = pids.map(cpuMicros); selfAfter = process.cpuUsage().user + process.cpuUsage().system }, warmupMs + durationMs)
    const load = os.loadavg()[0]!
    const r = await closedLoop({ cluster, targets, clients, warmupMs, durationMs, value: VALUE })
    clearTimeout(t1)
    clearTimeout(t2)
    // The last answers can all arrive in one poll phase, ending the load before the timer's turn.
    if (after.length === 0) { after = pids.map(cpuMicros); selfAfter = process.cpuUsage().user + process.cpuUsage().system }
    const per = after.map((a, i) => (a - before[i]!) / r.ops)
    const total = per.reduce((s, x) => s + x, 0)
    console.log(`round ${round}: ${clients} clients${flags.followers ? ' via followers' : ''}, load ${load.toFixed(2)}: ${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, ` +
      `CPU µs/write leader ${per[0]!.toFixed(0)}, followers ${per.slice(1).map((x) => x.toFixed(0)).join('/')}, members ${total.toFixed(0)}, load generator ${((selfAfter - selfBefore) / r.ops).toFixed(0)}${r.errors ? `, ${r.errors} errors` : ''}`)
  }
} finally {
  await cluster.stop()
}
process.exit(0)
