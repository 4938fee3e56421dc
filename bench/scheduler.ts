// Placement throughput benchmark. A simulated cluster (nodes registered in the
// FSM, no containers) and service jobs with constraints, all registered at
// once; measures
//   (a) committed placements/s: first JobRegister → every allocation placed in
//       the leader's FSM, with the real EvalBroker, schedule() and PlanApply
//       committed through three Raft voters in this process (LevelDB, fsync on);
//   (b) scheduler-only placements/s: schedule() over a StateStore, no Raft.
//   Committed runs use two layouts of the three voters: "threads" (the leader,
//   and the broker, on the main thread; each follower on a worker thread, as
//   three servers would each have their own CPU) and "shared" (all three on the
//   main thread: every plan applied three times on one core).
// node bench/scheduler.ts [--nodes 5000] [--jobs 10] [--count 1000] [--quick] [--only sched|raft] [--layout threads|shared|both] [--label TEXT]
import { randomUUID } from 'node:crypto'
import { Session } from 'node:inspector/promises'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { EvalBroker, schedulerView } from '../src/agent/leader.ts'
import { encode } from '../src/fsm/codec.ts'
import type { Command, NewEval } from '../src/fsm/commands.ts'
import { applyCommand } from '../src/fsm/apply.ts'
import { StateStore } from '../src/fsm/state.ts'
import { schedule } from '../src/scheduler/index.ts'
import { InProcessCluster } from './lib/scheduler-cluster.ts'
import { fmt, quantile, spreadSummary, table, verifyPlacements } from './lib/scheduler-report.ts'
import { makeJobs, makeNodes, type BenchJob } from './lib/scheduler-workload.ts'
import type { NewNode } from '../src/fsm/commands.ts'

const USAGE = `usage: node bench/scheduler.ts [--nodes N] [--jobs N] [--count N] [--quick] [--only sched|raft] [--layout L] [--repeat N] [--seed N] [--label TEXT]
  --nodes N    simulated client nodes (default 5000; --quick 1000)
  --jobs N     service jobs registered at once (default 10)
  --count N    allocations per job (default 1000; --quick 300)
  --only X     run only the scheduler-only (sched) or the committed (raft) measurement
  --layout L   committed runs: threads (followers on worker threads), shared (all on the main thread) or both (default)
  --repeat N   runs of each measurement (layouts alternate), median and best reported (default 3; --quick 1)
  --seed N     cluster generator seed (default 1)
  --label T    a note stored with the results (e.g. "before")
  --profile F  write a CPU profile of the committed run's measured window only to F (.cpuprofile)`

const ANCHORS = [
  { name: 'Nomad C1M (5 servers, 2015)', perSecond: 3_750 },
  { name: 'Nomad C2M (2020)', perSecond: 1_500 },
  { name: 'target (2 cores, 3 voters)', perSecond: 10_000 },
]

const quietLog = { info: () => undefined, warn: (m: string) => console.warn(`  [broker] ${m}`) }

function newEval(jobId: string): NewEval {
  const now = Date.now()
  return { id: randomUUID(), jobId, triggeredBy: 'job-register', status: 'pending', statusDescription: '', failedGroups: {}, createTime: now, modifyTime: now }
}

interface EvalTiming { ms: number; place: number }

/** CPU time (user + system, all threads) of this process, in ms. */
function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

interface SchedOnlyRun {
  placements: number
  unplacedEvals: number
  scheduleMs: number
  /** CPU time spent in schedule(): less than the wall time when other work shares the machine. */
  scheduleCpuMs: number
  applyMs: number
  evals: EvalTiming[]
  problems: string[]
  nodesUsed: number
  maxPerNode: number
}

/** (b): the broker's loop without Raft: schedule() each pending evaluation and apply its plan in memory. */
function schedulerOnly(nodes: readonly NewNode[], jobs: readonly BenchJob[]): SchedOnlyRun {
  const state = new StateStore()
  let index = 0
  const apply = (cmd: Command) => {
    const r = applyCommand(state, ++index, cmd)
    if (!r.result.ok) throw new Error(r.result.error)
    state.applyChanges(r.changes, index)
  }
  for (const node of nodes) apply({ type: 'NodeRegister', node, time: 0 })
  for (const j of jobs) apply({ type: 'JobRegister', spec: j.spec, time: Date.now(), eval: newEval(j.spec.id) })
  const view = schedulerView(state)
  const run: SchedOnlyRun = { placements: 0, unplacedEvals: 0, scheduleMs: 0, scheduleCpuMs: 0, applyMs: 0, evals: [], problems: [], nodesUsed: 0, maxPerNode: 0 }
  for (;;) {
    const pending = state.list('evals').filter((e) => e.status === 'pending').sort((a, b) => a.createIndex - b.createIndex)
    if (pending.length === 0) break
    for (const ev of pending) {
      const c0 = cpuMs()
      const t0 = performance.now()
      const plan = schedule(view, ev, { now: Date.now(), newId: randomUUID })
      const t1 = performance.now()
      run.scheduleCpuMs += cpuMs() - c0
      apply({ type: 'PlanApply', evalId: ev.id, place: plan.place, stop: plan.stop, inPlace: plan.inPlace, evalUpdate: plan.evalUpdate, newEvals: plan.newEvals, time: plan.evalUpdate.modifyTime })
      run.applyMs += performance.now() - t1
      run.scheduleMs += t1 - t0
      run.placements += plan.place.length
      if (plan.evalUpdate.status === 'blocked') run.unplacedEvals++
      run.evals.push({ ms: t1 - t0, place: plan.place.length })
    }
  }
  run.problems = verifyPlacements(state, jobs.map((j) => j.spec))
  Object.assign(run, spreadSummary(state))
  return run
}

type Layout = 'threads' | 'shared'
const LAYOUT_NAMES: Record<Layout, string> = {
  threads: 'Shoal committed, 3 voters (followers on worker threads)',
  shared: 'Shoal committed, 3 voters on one thread',
}

interface CommittedRun {
  layout: Layout
  placements: number
  expected: number
  ms: number
  /** CPU time of the process over `ms` (the three members, the broker, LevelDB's threads). */
  cpuMs: number
  allMembersMs: number
  nodeRegisterMs: number
  evals: EvalTiming[]
  commits: EvalTiming[]
  plans: { place: number; bytes: number }[]
  raftBytes: number
  problems: string[]
  nodesUsed: number
  maxPerNode: number
}

/** (a): three voters, the real broker; from the first JobRegister to every allocation in the leader's FSM. */
async function committed(layout: Layout, nodes: readonly NewNode[], jobs: readonly BenchJob[], expected: number, profile: string | undefined): Promise<CommittedRun> {
  const cluster = await InProcessCluster.start({ size: 3, threads: layout === 'threads' })
  try {
    const leader = await cluster.leader()
    const proposer = cluster.proposer(leader)
    const reg0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 256 }, async () => {
      while (next < nodes.length) {
        const node = nodes[next++]!
        const r = await proposer.propose({ type: 'NodeRegister', node, time: Date.now() })
        if (!r.ok) throw new Error(r.error)
      }
    }))
    await cluster.allApplied(leader.fsm.appliedIndex)
    const nodeRegisterMs = performance.now() - reg0
    const bytesBefore = cluster.bytesSent

    const evals: EvalTiming[] = []
    const commits: EvalTiming[] = []
    const planCommands: Extract<Command, { type: 'PlanApply' }>[] = []
    const broker = new EvalBroker(leader.fsm, proposer, quietLog, {
      scheduled: (i) => evals.push({ ms: i.ms, place: i.place }),
      committed: (i) => commits.push({ ms: i.ms, place: i.place }),
    })
    const jobIds = new Set(jobs.map((j) => j.spec.id))
    let placed = 0
    let registered = 0
    let finish: () => void = () => undefined
    const finished = new Promise<void>((r) => { finish = r })
    const settled = () => {
      if (registered < jobs.length) return false
      if (placed >= expected) return true
      // Nothing left to do for the broker: some allocations could not be placed.
      return leader.fsm.state.list('evals').every((e) => !jobIds.has(e.jobId) || e.status !== 'pending')
    }
    leader.fsm.on('applied', (e) => {
      if (e.command.type === 'JobRegister') registered++
      if (e.command.type === 'PlanApply') {
        planCommands.push(e.command)
        placed += e.command.place.length
      }
      if (settled()) finish()
    })
    broker.start()

    let session: Session | null = null
    if (profile) {
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.start')
    }
    const c0 = cpuMs()
    const t0 = performance.now()
    // A scheduler that holds the event loop for long can make these time out
    // although they commit: the applied events above are what count.
    const results = await Promise.allSettled(jobs.map((j) => proposer.propose({ type: 'JobRegister', spec: j.spec, time: Date.now(), eval: newEval(j.spec.id) })))
    for (const r of results) {
      if (r.status === 'fulfilled' && !r.value.ok) throw new Error(r.value.error)
      if (r.status === 'rejected') console.warn(`  JobRegister: ${(r.reason as Error).message} (waiting for it to apply)`)
    }
    const timeout = setTimeout(finish, 600_000)
    await finished
    clearTimeout(timeout)
    const ms = performance.now() - t0
    const cpu = cpuMs() - c0
    if (session && profile) {
      const { profile: p } = await session.post('Profiler.stop')
      await writeFile(profile, JSON.stringify(p))
      session.disconnect()
      console.log(`  CPU profile of the measured window: ${profile}`)
    }
    await cluster.allApplied(leader.fsm.appliedIndex)
    const allMembersMs = performance.now() - t0
    broker.stop()
    const raftBytes = cluster.bytesSent - bytesBefore

    const problems = verifyPlacements(leader.fsm.state, jobs.map((j) => j.spec))
    for (const m of await cluster.reports()) {
      if (m.appliedIndex !== leader.fsm.state.appliedIndex || m.allocs !== leader.fsm.state.tables.allocs.size) {
        problems.push(`member ${m.id} differs from the leader (index ${m.appliedIndex}, ${m.allocs} allocs)`)
      }
    }
    return {
      layout, placements: placed, expected, ms, cpuMs: cpu, allMembersMs, nodeRegisterMs, evals, commits,
      plans: planCommands.map((c) => ({ place: c.place.length, bytes: encode(c).length })),
      raftBytes, problems, ...spreadSummary(leader.fsm.state),
    }
  } finally {
    await cluster.stop()
  }
}

function evalLine(what: string, evals: readonly EvalTiming[]): string[] {
  const ms = evals.map((e) => e.ms)
  const perPlacement = evals.filter((e) => e.place > 0).map((e) => (e.ms * 1000) / e.place)
  return [what, String(evals.length), fmt(quantile(ms, 0.5), 1), fmt(quantile(ms, 0.99), 1), fmt(Math.max(...ms, 0), 1), fmt(quantile(perPlacement, 0.5), 1)]
}

async function main(): Promise<void> {
  let flags
  try {
    flags = parseArgs({
      options: {
        nodes: { type: 'string' }, jobs: { type: 'string' }, count: { type: 'string' }, quick: { type: 'boolean', default: false },
        only: { type: 'string' }, layout: { type: 'string', default: 'both' }, profile: { type: 'string' }, repeat: { type: 'string' }, seed: { type: 'string' }, label: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    process.exit(1)
  }
  if (flags.help) {
    console.log(USAGE)
    return
  }
  const num = (v: string | undefined, d: number) => {
    const n = v === undefined ? d : Number(v)
    if (!Number.isInteger(n) || n < 0) {
      console.error(`not a count: ${v}\n${USAGE}`)
      process.exit(1)
    }
    return n
  }
  const nNodes = num(flags.nodes, flags.quick ? 1000 : 5000)
  const nJobs = num(flags.jobs, 10)
  const count = num(flags.count, flags.quick ? 300 : 1000)
  const repeat = Math.max(1, num(flags.repeat, flags.quick ? 1 : 3))
  const seed = num(flags.seed, 1)
  const only = flags.only
  if (only !== undefined && only !== 'sched' && only !== 'raft') {
    console.error(`--only takes sched or raft\n${USAGE}`)
    process.exit(1)
  }

  if (!['threads', 'shared', 'both'].includes(flags.layout)) {
    console.error(`--layout takes threads, shared or both\n${USAGE}`)
    process.exit(1)
  }
  const layouts: Layout[] = flags.layout === 'both' ? ['threads', 'shared'] : [flags.layout as Layout]

  const nodes = makeNodes(nNodes, seed)
  const jobs = makeJobs(nJobs, count, nNodes)
  const expected = nJobs * count
  const cpu = os.cpus()
  console.log(`Placement benchmark: ${fmt(nNodes)} nodes, ${nJobs} service jobs × ${fmt(count)} allocations = ${fmt(expected)} placements`)
  console.log(`machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}${flags.label ? `; label: ${flags.label}` : ''}`)
  for (const j of jobs) console.log(`  ${j.spec.id}: cpu ${j.spec.groups[0]!.tasks[0]!.resources.cpu} MHz, ${j.spec.groups[0]!.tasks[0]!.resources.memoryMB} MB; ${j.what}`)

  const sched: SchedOnlyRun[] = []
  if (only !== 'raft') {
    for (let i = 0; i < repeat; i++) {
      const r = schedulerOnly(nodes, jobs)
      sched.push(r)
      console.log(`\nscheduler-only run ${i + 1}/${repeat}: ${fmt(r.placements)} placed in ${fmt(r.scheduleMs, 0)} ms of schedule() (${fmt((r.placements / r.scheduleMs) * 1000)}/s; CPU ${fmt(r.scheduleCpuMs, 0)} ms); in-memory apply ${fmt(r.applyMs, 0)} ms`)
    }
  }
  const raftRuns: CommittedRun[] = []
  if (only !== 'sched') {
    for (let i = 0; i < repeat; i++) {
      for (const layout of layouts) {
        console.log(`\ncommitted run ${i + 1}/${repeat} (${layout}): starting 3 voters, registering nodes through Raft...`)
        const profile = flags.profile && i === 0 ? (layouts.length > 1 ? flags.profile.replace(/(\.cpuprofile)?$/, `-${layout}.cpuprofile`) : flags.profile) : undefined
        const r = await committed(layout, nodes, jobs, expected, profile)
        raftRuns.push(r)
        console.log(`  nodes registered in ${fmt(r.nodeRegisterMs / 1000, 1)} s; ${fmt(r.placements)} placements committed in ${fmt(r.ms, 0)} ms, CPU ${fmt(r.cpuMs, 0)} ms (all 3 members: ${fmt(r.allMembersMs, 0)} ms); load ${os.loadavg()[0]!.toFixed(1)}`)
      }
    }
  }
  const runsOf = (layout: Layout) => raftRuns.filter((r) => r.layout === layout)
  const rate = (r: CommittedRun) => (r.placements / r.ms) * 1000
  /** The run with the median wall rate, to show as the layout's figures. */
  const medianRun = (runs: CommittedRun[]) => [...runs].sort((a, b) => rate(a) - rate(b))[Math.floor((runs.length - 1) / 2)]!
  const shown = layouts.filter((l) => runsOf(l).length > 0).map((l) => medianRun(runsOf(l)))

  const bestSched = sched.length ? sched.reduce((a, b) => (a.placements / a.scheduleMs >= b.placements / b.scheduleMs ? a : b)) : null
  const medianSchedRate = sched.length ? quantile(sched.map((r) => (r.placements / r.scheduleMs) * 1000), 0.5) : NaN
  const rows: string[][] = []
  for (const raft of shown) {
    const runs = runsOf(raft.layout)
    const cpuRate = quantile(runs.map((r) => (r.placements / r.cpuMs) * 1000), 0.5)
    rows.push([`${LAYOUT_NAMES[raft.layout]}${runs.length > 1 ? ` (median of ${runs.length})` : ''}`, fmt(rate(raft)), fmt(cpuRate),
      `${fmt(raft.placements)} in ${fmt(raft.ms / 1000, 2)} s${runs.length > 1 ? `; best ${fmt(Math.max(...runs.map(rate)))}/s` : ''}`])
  }
  if (bestSched) {
    const cpuRate = quantile(sched.map((r) => (r.placements / r.scheduleCpuMs) * 1000), 0.5)
    rows.push([`Shoal schedule() only (median of ${sched.length})`, fmt(medianSchedRate), fmt(cpuRate), `best ${fmt((bestSched.placements / bestSched.scheduleMs) * 1000)}/s`])
  }
  for (const a of ANCHORS) rows.push([a.name, fmt(a.perSecond), '', ''])
  console.log(`\n${table(['placements per second', 'wall', 'per CPU-s', ''], rows)}`)
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${cpu.length} cores; other work shares them: wall figures vary, CPU figures less)`)

  const evalRows: string[][] = []
  for (const l of layouts) {
    const runs = runsOf(l)
    if (runs.length) evalRows.push(evalLine(`schedule(), committed (${l})`, runs.flatMap((r) => r.evals)), evalLine(`PlanApply propose → applied (${l})`, runs.flatMap((r) => r.commits)))
  }
  if (bestSched) evalRows.push(evalLine('schedule(), scheduler-only (all runs)', sched.flatMap((r) => r.evals)))
  console.log(`\n${table(['per evaluation', 'n', 'p50 ms', 'p99 ms', 'max ms', 'µs/placement p50'], evalRows)}`)

  for (const raft of shown) {
    const sizes = raft.plans.map((p) => p.place)
    const bytes = raft.plans.map((p) => p.bytes)
    console.log(`\nPlanApply (${raft.layout}): ${raft.plans.length} plans; allocations per plan p50 ${fmt(quantile(sizes, 0.5))}, max ${fmt(Math.max(...sizes, 0))}; ` +
      `encoded p50 ${fmt(quantile(bytes, 0.5) / 1024)} KiB, max ${fmt(Math.max(...bytes, 0) / 1024)} KiB; Raft traffic ${fmt(raft.raftBytes / 1024 / 1024, 1)} MiB`)
    console.log(`  spread: ${fmt(raft.nodesUsed)} nodes used, at most ${raft.maxPerNode} allocations on one node`)
  }
  if (bestSched) console.log(`scheduler-only spread: ${fmt(bestSched.nodesUsed)} nodes used, at most ${bestSched.maxPerNode} allocations on one node`)

  const problems = [...raftRuns.flatMap((r) => r.problems), ...sched.flatMap((r) => r.problems)]
  const unplaced = raftRuns.reduce((n, r) => n + (r.expected - r.placements), 0) + sched.reduce((n, r) => n + (expected - r.placements), 0)
  if (problems.length || unplaced) {
    console.log(`\nPROBLEMS (${problems.length}; ${unplaced} unplaced):\n  ${problems.slice(0, 20).join('\n  ')}`)
  } else {
    console.log('\nverified: every allocation placed; no overcommit, no shared port, every constraint and distinct_* rule holds')
  }

  const dir = join(resolve(fileURLToPath(import.meta.url), '..'), 'results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `scheduler-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({
    benchmark: 'scheduler', label: flags.label ?? null, when: new Date().toISOString(),
    machine: { cpus: cpu.length, model: cpu[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` },
    params: { nodes: nNodes, jobs: nJobs, count, seed, repeat },
    jobs: jobs.map((j) => ({ id: j.spec.id, rules: j.what })),
    committed: raftRuns.map((raft) => ({
      layout: raft.layout, placements: raft.placements, ms: raft.ms, perSecond: (raft.placements / raft.ms) * 1000, cpuMs: raft.cpuMs, allMembersMs: raft.allMembersMs,
      nodeRegisterMs: raft.nodeRegisterMs, scheduleMs: raft.evals.map((e) => e.ms), commitMs: raft.commits.map((e) => e.ms),
      plans: raft.plans, raftBytes: raft.raftBytes, nodesUsed: raft.nodesUsed, maxPerNode: raft.maxPerNode,
    })),
    schedulerOnly: sched.map((r) => ({
      placements: r.placements, scheduleMs: r.scheduleMs, scheduleCpuMs: r.scheduleCpuMs, perSecond: (r.placements / r.scheduleMs) * 1000, applyMs: r.applyMs,
      evalMs: r.evals.map((e) => e.ms), nodesUsed: r.nodesUsed, maxPerNode: r.maxPerNode,
    })),
    loadavg: os.loadavg(), anchors: ANCHORS, problems, unplaced,
  }, null, 2))
  console.log(`results: ${file}`)
  if (problems.length) process.exitCode = 1
}

await main()
