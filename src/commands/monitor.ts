// Follows an evaluation and the allocations it placed until they run, fail or
// the timeout passes: what `job run` and `job stop` show the user.
import type { Command } from '@oclif/core'
import type { ApiClient } from '../api/client.ts'
import type { Evaluation, PlacementFailure } from '../structs/index.ts'
import { shortId } from './format.ts'

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

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
  while (true) {
    const all = await api.get<AllocStub[]>(`/v1/job/${encodeURIComponent(jobId)}/allocations`)
    mine = all.filter((a) => a.evalId === evalId)
    for (const a of mine) {
      const key = `${a.clientStatus}/${a.clientDescription}`
      if (seen.get(a.id) === key) continue
      seen.set(a.id, key)
      const ports = a.ports.map((p) => `${p.label} ${p.hostIp}:${p.value}→${p.to}`).join(', ')
      opts.log(`    Allocation ${shortId(a.id)} ${a.name} on ${a.nodeName}: ${a.clientStatus}${a.clientDescription ? ` (${a.clientDescription})` : ''}${ports && a.clientStatus === 'running' ? ` [${ports}]` : ''}`)
    }
    const settled = mine.every((a) => a.clientStatus !== 'pending')
    if (!opts.waitForRunning || settled || Date.now() >= deadline) break
    await sleep(250)
  }
  const ok = ev.status === 'complete' && mine.every((a) => a.clientStatus === 'running' || a.clientStatus === 'complete')
  return { evaluation: ev, allocations: mine, ok }
}

/**
 * After a job write: follow its evaluation and allocations, then exit as
 * Nomad does: 0 all running, 2 some allocations could not be placed, 1 otherwise.
 */
export async function followSubmission(cmd: Command, api: ApiClient, submitted: { jobId: string; evalId: string }, timeoutSeconds: number): Promise<MonitorResult> {
  const result = await monitorEval(api, submitted.evalId, submitted.jobId, { timeoutMs: timeoutSeconds * 1000, log: (s) => cmd.log(s), waitForRunning: true })
  if (result.evaluation.status === 'blocked') cmd.exit(2)
  if (!result.ok) {
    process.stderr.write('Error: not every allocation is running; see "shoal job status" and "shoal alloc status"\n')
    cmd.exit(1)
  }
  return result
}
