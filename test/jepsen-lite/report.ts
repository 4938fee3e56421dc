// Human-readable output: the checker's verdict per key, a run's summary, and for
// an invalid run the smallest failing window of the history with the agents' log
// lines around it.
import { readFile } from 'node:fs/promises'
import { formatOp, type CheckResult } from './checker.ts'
import type { Operation } from './history.ts'
import type { AgentExit } from './cluster.ts'
import type { InvariantResult } from './invariants.ts'

export function describeCheck(result: CheckResult, ops: readonly Operation[], t0 = ops.length ? Math.min(...ops.map((o) => o.invoke)) : 0): string {
  const lines: string[] = []
  lines.push(`linearizability: ${result.verdict.toUpperCase()} (${ops.length} ops, ${result.keys.length} keys, checked in ${result.ms} ms)`)
  for (const k of result.keys) {
    lines.push(`  ${k.key}: ${k.verdict} — ${k.ops.ok} ok, ${k.ops.fail} fail, ${k.ops.info} info (${k.ops.checked} searched, ${k.ops.droppedInfo} unobserved info pruned), ${k.steps} steps${k.reason ? `; ${k.reason}` : ''}`)
    for (const p of k.indexProblems) lines.push(`    index: ${p}`)
    if (k.verdict !== 'invalid' || !k.deepest) continue
    if (k.window) {
      lines.push(`    smallest failing window (${k.window.ops.length} ops, ${((k.window.to - k.window.from) / 1000).toFixed(3)} s${k.window.proven ? ', not linearizable from any initial state' : ', best effort: search budget ran out'}):`)
      for (const o of k.window.ops) lines.push(`      ${formatOp(o, t0)}`)
    }
    lines.push(`    the search got furthest with ${k.deepest.linearizedOk} ok ops linearized; register then held ${JSON.stringify(k.deepest.state)}; last linearized:`)
    for (const o of k.deepest.lastLinearized) lines.push(`      ${formatOp(o, t0)}`)
    lines.push(`    and could not linearize: ${formatOp(k.deepest.blocking, t0)}`)
  }
  return lines.join('\n')
}

export interface RunSummary {
  seed: number
  startedAt: string
  resultsDir: string
  git: { head: string; dirtySrc: string[] }
  reads: 'consistent' | 'local'
  nemeses: string[]
  clients: number
  keys: number
  /** Seconds of workload (faults), and of the whole run with setup and checks. */
  seconds: number
  wallSeconds: number
  ops: { total: number; ok: number; fail: number; info: number; byF: Record<string, { ok: number; fail: number; info: number }> }
  faults: { injected: number; byKind: Record<string, number>; schedule: string[] }
  jobUpdates: { ok: number; fail: number; info: number }
  linearizability: { verdict: string; ms: number; keys: { key: string; verdict: string; ok: number; info: number; fail: number; steps: number }[] }
  invariants: InvariantResult[]
  /** Agents that exited without being killed by the nemesis (a finding; the supervisor restarted them). */
  agentExits: AgentExit[]
  verdict: 'valid' | 'invalid' | 'unknown'
  error?: string
}

export function formatSummary(s: RunSummary): string {
  const lines = [
    `jepsen-lite run — seed ${s.seed} — ${s.verdict.toUpperCase()}`,
    `  started ${s.startedAt}, ${s.seconds}s of faults, ${s.wallSeconds.toFixed(0)}s in all; results in ${s.resultsDir}`,
    `  shoal at ${s.git.head.slice(0, 10)}${s.git.dirtySrc.length ? ` with uncommitted changes in ${s.git.dirtySrc.join(', ')}` : ''}`,
    `  nemesis: ${s.nemeses.join(',') || 'none'}; ${s.clients} clients on ${s.keys} keys${s.reads === 'local' ? '; LOCAL reads (no ?consistent): expected to be caught' : ''}`,
    `  ops: ${s.ops.total} (${s.ops.ok} ok, ${s.ops.fail} fail, ${s.ops.info} info)` +
      ` — ${Object.entries(s.ops.byF).map(([f, c]) => `${f} ${c.ok}/${c.fail}/${c.info}`).join(', ')} (ok/fail/info)`,
    `  faults injected: ${s.faults.injected} (${Object.entries(s.faults.byKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`,
    `  job updates during faults: ${s.jobUpdates.ok} ok, ${s.jobUpdates.fail} fail, ${s.jobUpdates.info} info`,
    `  linearizability: ${s.linearizability.verdict} in ${s.linearizability.ms} ms (${s.linearizability.keys.map((k) => `${k.key} ${k.verdict}`).join(', ')})`,
    ...s.invariants.map((i) => `  ${i.ok ? 'ok  ' : 'FAIL'} ${i.name}${i.ok ? '' : ` [${i.kind}]`}: ${i.detail.split('\n').join('\n       ')}`),
  ]
  if (s.agentExits.length) {
    const byAgent = new Map<string, number>()
    for (const e of s.agentExits) byAgent.set(e.agent, (byAgent.get(e.agent) ?? 0) + 1)
    const reasons = new Map<string, number>()
    for (const e of s.agentExits) {
      const reason = e.lastLine.replace(/12D3KooW\w+/g, '<peer>').replace(/within \d+ ms/, 'within N ms')
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    lines.push(`  finding: agents exited on their own ${s.agentExits.length} time(s) (${[...byAgent].map(([a, n]) => `${a} ×${n}`).join(', ')}); restarted after 2 s by the harness's supervisor`)
    for (const [r, n] of reasons) lines.push(`    ×${n}: ${r}`)
  }
  if (s.error) lines.push(`  error: ${s.error}`)
  return lines.join('\n')
}

/**
 * Lines of an agent log whose ISO timestamp falls within [fromMs, toMs] (wall
 * clock); lines without a timestamp stay with the line before them.
 */
export async function logLinesBetween(file: string, fromMs: number, toMs: number, max = 400): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const out: string[] = []
  let inside = false
  for (const line of text.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)/.exec(line)
    if (m) {
      const t = Date.parse(m[1]!)
      inside = t >= fromMs && t <= toMs
    }
    if (inside && line) out.push(line)
  }
  return out.length > max ? [...out.slice(0, max / 2), `… ${out.length - max} lines …`, ...out.slice(-max / 2)] : out
}
