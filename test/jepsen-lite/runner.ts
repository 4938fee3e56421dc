// One jepsen-lite run: start the 5-agent cluster, run clients, job churn and the
// nemesis for `seconds`, heal everything, let the cluster quiesce, then check the
// history for linearizability and the orchestration invariants, and write the
// results folder:
//   history.jsonl     the client history (check it again with check.ts)
//   nemesis.log       every fault and heal with its time
//   jobs.jsonl        job re-registrations during the faults
//   summary.json/.txt the run's summary and verdict
//   anomaly.txt       when invalid: the smallest failing windows and agents' logs around them
//   logs/<agent>.log  agent output (every incarnation), data/<agent>/ data dirs
import { execFileSync } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkHistory, formatOp } from './checker.ts'
import { runClients, type ClientStats } from './client.ts'
import { Cluster, killLeftoverTasks, liveTasks } from './cluster.ts'
import { HistoryRecorder, pairOperations, serializeHistory } from './history.ts'
import { checkAckedWrites, checkFsmsEqual, checkJob, finalReads, jobChurn, submitJob, type InvariantResult, type JobEvent } from './invariants.ts'
import { describeFault, planSchedule, runNemesis, type NemesisFamily, type NemesisLog } from './nemesis.ts'
import { Random } from './prng.ts'
import { describeCheck, formatSummary, logLinesBetween, type RunSummary } from './report.ts'

export const RESULTS_ROOT = fileURLToPath(new URL('./results/', import.meta.url))

export interface RunOptions {
  seed: number
  /** Seconds of workload with faults. */
  seconds: number
  nemeses: NemesisFamily[]
  clients: number
  keys?: number
  /** Per-request client timeout. */
  timeoutMs?: number
  resultsRoot?: string
  /** Keep data dirs even when the run is valid (default true; the CI test passes false). */
  keepData?: boolean
  log?: (line: string) => void
  hosts?: string[]
  /** 'local' drops `?consistent` from the clients' reads (see client.ts): a deliberately broken read path. */
  reads?: 'consistent' | 'local'
}

/** Clusters of runs in progress, so an interrupted runner can still heal and stop them. */
export const activeClusters = new Set<Cluster>()

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The commit under test, and the src/ files that differ from it (others may be editing the tree). */
function gitInfo(): { head: string; dirtySrc: string[] } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' })
  try {
    return { head: git('rev-parse', 'HEAD').trim(), dirtySrc: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).map((l) => l.slice(3)) }
  } catch {
    return { head: 'unknown', dirtySrc: [] }
  }
}

export async function runJepsen(o: RunOptions): Promise<RunSummary> {
  const log = o.log ?? ((line: string) => process.stdout.write(line + '\n'))
  const started = Date.now()
  const startedAt = new Date(started).toISOString()
  const dir = join(o.resultsRoot ?? RESULTS_ROOT, `${startedAt.replace(/[:.]/g, '-')}-seed${o.seed}`)
  await mkdir(dir, { recursive: true })
  const keys = [...Array(o.keys ?? 5).keys()].map((i) => `jepsen/k${i}`)
  const jobId = 'jepsen-sleep'
  const rand = new Random(o.seed)
  const plan = planSchedule({ seed: o.seed, seconds: o.seconds, families: o.nemeses, agents: (o.hosts ?? []).length || 5 })
  log(`seed ${o.seed}: ${o.seconds}s, nemesis ${o.nemeses.join(',') || 'none'}, ${o.clients} clients${o.reads === 'local' ? ', LOCAL (non-linearizable) reads' : ''}; results in ${dir}`)
  for (const p of plan) log(`  planned ${describeFault(p)}`)

  const summary: RunSummary = {
    seed: o.seed, startedAt, resultsDir: dir, git: gitInfo(), reads: o.reads ?? 'consistent', nemeses: o.nemeses, clients: o.clients, keys: keys.length, seconds: o.seconds, wallSeconds: 0,
    ops: { total: 0, ok: 0, fail: 0, info: 0, byF: {} },
    faults: { injected: 0, byKind: {}, schedule: plan.map(describeFault) },
    jobUpdates: { ok: 0, fail: 0, info: 0 },
    linearizability: { verdict: 'unknown', ms: 0, keys: [] },
    invariants: [],
    agentExits: [],
    verdict: 'unknown',
  }
  const recorder = new HistoryRecorder()
  let cluster: Cluster | undefined
  let nemesisLog: NemesisLog | undefined
  const jobLog: JobEvent[] = []
  let t0 = performance.now()
  try {
    cluster = await Cluster.start(dir, { log, ...(o.hosts ? { hosts: o.hosts } : {}) })
    activeClusters.add(cluster)
    const c = cluster
    // The service job, registered before any fault.
    const registered = await eventuallyOk(() => submitJob(c.agents[0]!, jobId, 2), 30_000)
    if (!registered) throw new Error('could not register the job on a healthy cluster')

    let stopClients = false
    let stopChurn = false
    t0 = performance.now()
    const clients = runClients({
      agents: c.agents, keys, workers: o.clients, rand: rand.fork('clients'), recorder, timeoutMs: o.timeoutMs ?? 10_000,
      stop: () => stopClients, valuePrefix: `s${o.seed}-`, reads: o.reads ?? 'consistent',
    })
    const churn = o.nemeses.length ? jobChurn(c, jobId, rand.fork('jobs'), () => stopChurn, jobLog) : Promise.resolve()
    const progress = setInterval(() => {
      const counts = { ok: 0, fail: 0, info: 0 }
      for (const e of recorder.events) if (e.type !== 'invoke') counts[e.type]++
      log(`progress t0+${((performance.now() - t0) / 1000).toFixed(0)}s: ${counts.ok} ok, ${counts.fail} fail, ${counts.info} info`)
    }, 60_000)
    try {
      nemesisLog = await runNemesis(c, plan, { t0, log })
    } finally {
      clearInterval(progress)
    }
    // Let the faults finish playing out under the (now healed) cluster for the rest of the window.
    const remaining = t0 + o.seconds * 1000 - performance.now()
    if (remaining > 0) await sleep(remaining)
    stopChurn = true
    await churn
    // A few seconds of clients on a healed cluster: recovery is part of the history.
    await sleep(5_000)
    stopClients = true
    const stats: ClientStats = await clients
    log(`clients stopped: ${stats.ok} ok, ${stats.fail} fail, ${stats.info} info`)

    // Quiesce.
    let healthy = true
    try {
      await c.waitHealthy(120_000)
    } catch (err) {
      healthy = false
      summary.invariants.push({ name: 'cluster recovers after the faults', ok: false, kind: 'liveness', detail: (err as Error).message })
    }
    if (healthy) summary.invariants.push({ name: 'cluster recovers after the faults', ok: true, kind: 'liveness', detail: 'one leader, 5 alive members, all nodes ready, all FSMs at the same index' })
    const finals = await finalReads(c, keys, recorder, 1_000_000, Date.now() + 60_000)

    // The history.
    const events = recorder.events
    await writeFile(join(dir, 'history.jsonl'), serializeHistory({ seed: o.seed, timeOrigin: performance.timeOrigin, t0, keys, nemeses: o.nemeses, clients: o.clients, reads: o.reads ?? 'consistent' }, events))
    const ops = pairOperations(events)
    summary.ops = {
      total: ops.length, ok: ops.filter((x) => x.status === 'ok').length, fail: ops.filter((x) => x.status === 'fail').length,
      info: ops.filter((x) => x.status === 'info').length, byF: stats.byF,
    }
    log('checking linearizability…')
    const check = checkHistory(ops, { deadline: Date.now() + 10 * 60_000 })
    summary.linearizability = { verdict: check.verdict, ms: check.ms, keys: check.keys.map((k) => ({ key: k.key, verdict: k.verdict, ok: k.ops.ok, info: k.ops.info, fail: k.ops.fail, steps: k.steps })) }
    const checkText = describeCheck(check, ops, t0)
    log(checkText)
    await writeFile(join(dir, 'linearizability.txt'), checkText + '\n')

    summary.invariants.push(checkAckedWrites(ops, finals, keys, c.agents.length))
    summary.invariants.push(await checkFsmsEqual(c, 'jepsen/'))
    const final = await eventuallyOk(() => submitJob(c.agents[0]!, jobId, 2), 60_000)
    if (!final) summary.invariants.push({ name: 'final job registration', ok: false, kind: 'liveness', detail: 'could not register the job after the faults' })
    summary.invariants.push(await checkJob(c, jobId, 2))

    if (check.verdict === 'invalid') await writeAnomaly(dir, c, check, ops, t0)
    const invariantsOk = summary.invariants.every((i) => i.ok)
    summary.verdict = check.verdict === 'invalid' || !invariantsOk ? 'invalid' : check.verdict
  } catch (err) {
    summary.error = (err as Error).stack ?? String(err)
    summary.verdict = 'unknown'
  } finally {
    if (nemesisLog) {
      summary.faults.injected = nemesisLog.injected
      summary.faults.byKind = nemesisLog.byKind
      await writeFile(join(dir, 'nemesis.log'), nemesisLog.events.map((e) => `${e.wall} t0+${((e.time - t0) / 1000).toFixed(3)}s ${e.phase} #${e.fault} ${e.kind}: ${e.detail}`).join('\n') + '\n')
    }
    for (const j of jobLog) summary.jobUpdates[j.result]++
    await writeFile(join(dir, 'jobs.jsonl'), jobLog.map((j) => JSON.stringify(j)).join('\n') + (jobLog.length ? '\n' : ''))
    if (cluster) {
      summary.agentExits = [...cluster.exits]
      await stopJob(cluster, jobId)
      await cluster.stop()
      activeClusters.delete(cluster)
    }
    summary.wallSeconds = (Date.now() - started) / 1000
    await writeFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n')
    await writeFile(join(dir, 'summary.txt'), formatSummary(summary) + '\n')
    if (summary.verdict === 'valid' && o.keepData === false) await rm(join(dir, 'data'), { recursive: true, force: true })
  }
  log(formatSummary(summary))
  return summary
}

async function eventuallyOk(f: () => Promise<'ok' | 'fail' | 'info'>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await f()) === 'ok') return true
    await sleep(1_000)
  }
  return false
}

/** Deregisters the job and gives the agents a moment to stop its tasks (leftovers are killed by cluster.stop()). */
async function stopJob(cluster: Cluster, jobId: string): Promise<void> {
  try {
    await fetch(`${cluster.agents[0]!.address}/v1/job/${jobId}?purge=true`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) })
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline && (await liveTasks(cluster.agents.map((a) => a.spec.dataDir))).length > 0) await sleep(500)
  } catch {
    // the cluster is broken: cluster.stop() kills what is left
  }
  await killLeftoverTasks(cluster.agents.map((a) => a.spec.dataDir))
}

/** anomaly.txt: for each invalid key, the smallest failing window and every agent's log lines around it. */
async function writeAnomaly(dir: string, cluster: Cluster, check: ReturnType<typeof checkHistory>, ops: ReturnType<typeof pairOperations>, t0: number): Promise<void> {
  const lines: string[] = [describeCheck(check, ops, t0), '']
  const wall = (t: number) => performance.timeOrigin + t
  for (const k of check.keys.filter((x) => x.verdict === 'invalid')) {
    const w = k.window
    const from = w ? w.from : k.deepest!.blocking.invoke
    const to = w ? w.to : Number.isFinite(k.deepest!.blocking.complete) ? k.deepest!.blocking.complete : from
    lines.push(`==== ${k.key}: window ${new Date(wall(from)).toISOString()} .. ${new Date(wall(to)).toISOString()} (t0+${((from - t0) / 1000).toFixed(3)}s .. t0+${((to - t0) / 1000).toFixed(3)}s)`)
    for (const o of w?.ops ?? [k.deepest!.blocking]) lines.push(`  ${formatOp(o, t0)}`)
    for (const a of cluster.agents) {
      lines.push(`---- ${a.name} log, 2 s around the window`)
      lines.push(...(await logLinesBetween(join(dir, 'logs', `${a.name}.log`), wall(from) - 2_000, wall(to) + 2_000)).map((l) => `  ${l}`))
    }
    lines.push('')
  }
  await writeFile(join(dir, 'anomaly.txt'), lines.join('\n') + '\n')
}

export type { InvariantResult }
