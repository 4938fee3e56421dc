// Follows an evaluation and the allocations it placed, then the deployment of
// the job version until it succeeds, fails or waits on the user: what
// `job run`, `job revert`, `job scale` and `deployment status --monitor` show.
// On a terminal the deployment is a table redrawn in place; elsewhere, plain
// timestamped lines when something changes.
import { ApiError, type ApiClient } from '../api/client.ts'
import type { Deployment, Evaluation, PlacementFailure } from '../structs/index.ts'
import { awaitsPromotion } from '../structs/deployment.ts'
import { formatDuration } from '../jobspec/duration.ts'
import { shortId, table } from './format.ts'
import { writeError, type CommandIO } from './output.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface AllocStub {
  id: string
  name: string
  evalId: string
  nodeName: string
  desiredStatus: string
  clientStatus: string
  clientDescription: string
  jobVersion: number
  ports: { label: string; value: number; to: number; hostIp: string }[]
}

export function describeFailures(failed: Record<string, PlacementFailure>): string[] {
  const lines: string[] = []
  for (const [group, f] of Object.entries(failed)) {
    lines.push(`Group "${group}": ${f.unplaced} allocation(s) not placed; ${f.nodesEvaluated} node(s) evaluated`)
    for (const [reason, n] of Object.entries(f.filtered)) lines.push(`  * ${n} node(s) filtered: ${reason}`)
    for (const [reason, n] of Object.entries(f.exhausted)) lines.push(`  * ${n} node(s) exhausted: ${reason}`)
    for (const d of f.details) lines.push(`    - ${d}`)
  }
  return lines
}

export interface MonitorResult {
  evaluation: Evaluation
  allocations: AllocStub[]
  ok: boolean
}

export async function monitorEval(api: ApiClient, evalId: string, jobId: string, opts: { timeoutMs: number; log: (s: string) => void; waitForRunning: boolean }): Promise<MonitorResult> {
  const deadline = Date.now() + opts.timeoutMs
  let ev = await api.get<Evaluation>(`/v1/evaluation/${evalId}`)
  while (ev.status === 'pending' && Date.now() < deadline) {
    ev = await api.get<Evaluation>(`/v1/evaluation/${evalId}?index=${ev.modifyIndex}&wait=5s`)
  }
  opts.log(`==> Evaluation ${shortId(ev.id)} ${ev.status}${ev.statusDescription ? `: ${ev.statusDescription}` : ''}`)
  if (ev.status === 'pending') return { evaluation: ev, allocations: [], ok: false }
  const failures = describeFailures(ev.failedGroups)
  for (const l of failures) opts.log(l)

  const seen = new Map<string, string>()
  let mine: AllocStub[] = []
  let index: number | undefined
  while (true) {
    // Blocking reads: the answer comes as soon as the state changes (an allocation reports), not on a poll tick.
    const wait = Math.max(1, Math.min(5, Math.ceil((deadline - Date.now()) / 1000)))
    const query = index === undefined ? '' : `?index=${index}&wait=${wait}s`
    const res = await api.getIndexed<AllocStub[]>(`/v1/job/${encodeURIComponent(jobId)}/allocations${query}`)
    index = res.index
    mine = res.body.filter((a) => a.evalId === evalId)
    for (const a of mine) {
      const key = `${a.clientStatus}/${a.clientDescription}`
      if (seen.get(a.id) === key) continue
      seen.set(a.id, key)
      const ports = a.ports.map((p) => `${p.label} ${p.hostIp}:${p.value}→${p.to}`).join(', ')
      opts.log(`    Allocation ${shortId(a.id)} ${a.name} on ${a.nodeName}: ${a.clientStatus}${a.clientDescription ? ` (${a.clientDescription})` : ''}${ports && a.clientStatus === 'running' ? ` [${ports}]` : ''}`)
    }
    const settled = mine.every((a) => a.clientStatus !== 'pending')
    if (!opts.waitForRunning || settled || Date.now() >= deadline) break
  }
  const ok = ev.status === 'complete' && mine.every((a) => a.clientStatus === 'running' || a.clientStatus === 'complete')
  return { evaluation: ev, allocations: mine, ok }
}

/** How following a deployment ended. */
export type DeploymentOutcome = 'successful' | 'failed' | 'cancelled' | 'awaiting-promotion' | 'paused'

/** Exit codes: 0 successful, 1 failed or cancelled, 3 waiting on the user (canaries to promote, paused). */
export const DEPLOYMENT_EXIT: Record<DeploymentOutcome, number> = { successful: 0, failed: 1, cancelled: 1, 'awaiting-promotion': 3, paused: 3 }

const POLL_MS = 500

export interface FollowOptions {
  /** Redraw a table in place (a terminal) instead of printing timestamped lines. */
  tty: boolean
  /** Where output goes (nothing with --json). */
  write: (text: string) => void
  now?: () => number
  /** Between reads of the deployment (default 500 ms). */
  pollMs?: number
}

/** The table of a deployment's groups, as `deployment status` prints it. */
export function deploymentTable(d: Deployment, now = Date.now()): string {
  const canaries = Object.values(d.groups).some((g) => g.desiredCanaries > 0)
  const headers = ['Group', 'Desired', ...(canaries ? ['Canaries', 'Promoted'] : []), 'Placed', 'Healthy', 'Unhealthy', 'Progress Deadline']
  return table(headers, Object.entries(d.groups).map(([name, g]) => [
    name, g.desiredTotal, ...(canaries ? [`${g.placedCanaries.length}/${g.desiredCanaries}`, g.desiredCanaries > 0 ? String(g.promoted) : '-'] : []),
    g.placed, g.healthy, g.unhealthy, d.status === 'running' ? progressDeadline(g.requireProgressBy, now) : '-',
  ]))
}

function progressDeadline(by: number | undefined, now: number): string {
  if (by === undefined) return '-'
  const left = by - now
  return `${new Date(by).toISOString().replace(/\.\d+Z$/, 'Z')} (${left > 0 ? `${formatDuration(Math.ceil(left / 1000) * 1000)} left` : 'passed'})`
}

/** One line per change on a non-terminal: "fe 2/4 placed, 1 healthy, 0 unhealthy". */
function summaryLine(d: Deployment): string {
  const groups = Object.entries(d.groups).map(([name, g]) => {
    const canary = g.desiredCanaries > 0 ? `, canaries ${g.placedCanaries.length}/${g.desiredCanaries}${g.promoted ? ' promoted' : ''}` : ''
    return `${name} ${g.placed}/${g.desiredTotal} placed, ${g.healthy} healthy, ${g.unhealthy} unhealthy${canary}`
  })
  return `Deployment "${shortId(d.id)}" ${d.status}: ${groups.join('; ')}`
}

/** Canaries placed, all healthy, no auto_promote: only the user moves it on. */
function awaitingPromotion(d: Deployment & { allocations?: { id: string; healthy: boolean | null }[] }): boolean {
  const groups = Object.values(d.groups).filter(awaitsPromotion)
  if (groups.length === 0 || groups.some((g) => g.autoPromote)) return false
  const healthy = new Set((d.allocations ?? []).filter((a) => a.healthy === true).map((a) => a.id))
  return groups.every((g) => g.placedCanaries.length >= g.desiredCanaries && g.placedCanaries.every((id) => healthy.has(id)))
}

/** Follows a deployment until it ends or waits on the user, drawing its progress; returns how it ended. */
export async function followDeployment(api: ApiClient, deploymentId: string, o: FollowOptions): Promise<{ outcome: DeploymentOutcome; deployment: Deployment }> {
  const now = o.now ?? Date.now
  const stamp = () => new Date(now()).toISOString().replace(/\.\d+Z$/, 'Z')
  let drawn = 0
  let lastLine = ''
  const draw = (d: Deployment) => {
    if (o.tty) {
      const text = `${deploymentTable(d, now())}\nStatus: ${d.status}${d.statusDescription ? ` - ${d.statusDescription}` : ''}\n`
      // Move up over the previous drawing and clear it, then draw again.
      o.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ''}${text}`)
      drawn = text.split('\n').length - 1
    } else {
      const line = summaryLine(d)
      if (line !== lastLine) o.write(`${stamp()} ${line}\n`)
      lastLine = line
    }
  }
  let d = await api.get<Deployment & { allocations?: { id: string; healthy: boolean | null }[] }>(`/v1/deployment/${encodeURIComponent(deploymentId)}`)
  o.write(`==> ${o.tty ? '' : `${stamp()} `}Monitoring deployment "${shortId(d.id)}" of job "${d.jobId}" version ${d.jobVersion}\n`)
  while (true) {
    draw(d)
    let outcome: DeploymentOutcome | undefined
    if (d.status === 'successful' || d.status === 'failed' || d.status === 'cancelled' || d.status === 'paused') outcome = d.status
    else if (awaitingPromotion(d)) outcome = 'awaiting-promotion'
    if (outcome) {
      const verdict = outcome === 'awaiting-promotion'
        ? `canaries are healthy and await promotion: shoal deployment promote ${shortId(d.id)}`
        : `${outcome}${d.statusDescription ? `: ${d.statusDescription}` : ''}`
      o.write(`==> ${o.tty ? '' : `${stamp()} `}Deployment "${shortId(d.id)}" ${verdict}\n`)
      return { outcome, deployment: d }
    }
    await sleep(o.pollMs ?? POLL_MS)
    d = await api.get(`/v1/deployment/${encodeURIComponent(d.id)}`)
  }
}

/** The deployment of the given job version, if the job has one (service jobs). */
async function deploymentOf(api: ApiClient, jobId: string, version: number): Promise<Deployment | undefined> {
  try {
    const d = await api.get<Deployment>(`/v1/job/${encodeURIComponent(jobId)}/deployment`)
    return d.jobVersion === version ? d : undefined
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined
    throw err
  }
}

/** Whether a command prints (not --json) and on a terminal. */
export function outputMode(json: boolean): FollowOptions {
  return { tty: !json && process.stdout.isTTY === true, write: json ? () => undefined : (text) => void process.stdout.write(text) }
}

/**
 * After a job write: follow its evaluation, then the version's deployment (or,
 * without one, its allocations), and exit as Nomad does: 0 the deployment
 * succeeded (without one: every allocation runs), 2 some allocations could not
 * be placed, 3 the deployment waits on the user, 1 otherwise.
 */
export async function followSubmission(
  cmd: CommandIO, api: ApiClient, submitted: { jobId: string; evalId: string; version: number }, timeoutSeconds: number, json = false,
): Promise<MonitorResult & { deployment?: Deployment; outcome?: DeploymentOutcome }> {
  const out = outputMode(json)
  const log = (s: string) => cmd.log(s)
  const first = await monitorEval(api, submitted.evalId, submitted.jobId, { timeoutMs: timeoutSeconds * 1000, log, waitForRunning: false })
  if (first.evaluation.status === 'blocked') cmd.exit(2)
  const deployment = first.evaluation.status === 'complete' ? await deploymentOf(api, submitted.jobId, submitted.version) : undefined
  if (deployment) {
    const { outcome, deployment: d } = await followDeployment(api, deployment.id, out)
    if (outcome !== 'successful') {
      if (outcome !== 'awaiting-promotion' && outcome !== 'paused') writeError(`deployment ${shortId(d.id)} ${outcome}${d.statusDescription ? `: ${d.statusDescription}` : ''}`)
      cmd.exit(DEPLOYMENT_EXIT[outcome])
    }
    return { ...first, ok: true, deployment: d, outcome }
  }
  const result = await monitorEval(api, submitted.evalId, submitted.jobId, { timeoutMs: timeoutSeconds * 1000, log: (s) => { if (!s.startsWith('==> Evaluation')) log(s) }, waitForRunning: true })
  if (!result.ok) {
    writeError('not every allocation is running; see "shoal job status" and "shoal alloc status"')
    cmd.exit(1)
  }
  return result
}
