// The side-by-side table and the targets, from the results of both systems.
import type { FailoverTrial, StabilityResult } from './faults.ts'
import type { LoadResult } from './load.ts'

export interface SystemResults {
  system: string
  settings: Record<string, string | number | boolean>
  puts: { label: string; result: LoadResult }[]
  failover: { trials: FailoverTrial[]; medianMs: number | null; maxMs: number | null }
  stability: StabilityResult | null
  /** 1-minute load average when this system's run started and ended (other work shares the machine). */
  loadAvg: { start: number; end: number }
}

export interface Target {
  name: string
  pass: boolean | null
  detail: string
}

const num = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits))
const pad = (s: string, n: number) => s.padStart(n)

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function summarizeFailover(trials: FailoverTrial[]): SystemResults['failover'] {
  const ok = trials.map((t) => t.ms).filter((m): m is number => m !== null)
  return { trials, medianMs: median(ok), maxMs: ok.length ? Math.max(...ok) : null }
}

function loadCells(r: LoadResult | undefined): string {
  if (!r) return `${pad('-', 11)} ${pad('-', 7)} ${pad('-', 7)}`
  return `${pad(num(r.opsPerSec, 0), 11)} ${pad(num(r.p50Ms, 2), 7)} ${pad(num(r.p99Ms, 2), 7)}`
}

export function targets(shoal?: SystemResults, etcd?: SystemResults): Target[] {
  const at = (s: SystemResults | undefined, label: string) => s?.puts.find((p) => p.label === label)?.result
  const out: Target[] = []
  const s64 = at(shoal, '64 clients')
  const e64 = at(etcd, '64 clients')
  const tput = s64 && e64 && e64.opsPerSec > 0 ? s64.opsPerSec / e64.opsPerSec : null
  out.push({ name: "shoal ops/s ≥ 1.25× etcd's at 64 clients", pass: tput === null ? null : tput >= 1.25, detail: `${num(tput, 2)}×` })
  const s1 = at(shoal, '1 client')
  const e1 = at(etcd, '1 client')
  const lat = s1 && e1 && e1.p50Ms > 0 ? s1.p50Ms / e1.p50Ms : null
  out.push({ name: "shoal p50 at 1 client ≤ 1.5× etcd's", pass: lat === null ? null : lat <= 1.5, detail: `${num(lat, 2)}× (${num(s1?.p50Ms, 2)} vs ${num(e1?.p50Ms, 2)} ms)` })
  const fo = shoal?.failover.medianMs ?? null
  const foAll = shoal ? shoal.failover.trials.every((t) => t.ms !== null) : false
  out.push({ name: 'shoal failover median ≤ 1 s', pass: fo === null ? null : fo <= 1000 && foAll, detail: `${num(fo, 0)} ms${foAll || !shoal ? '' : ' (some trials never recovered)'}` })
  const ch = shoal?.stability?.leaderChanges ?? null
  out.push({ name: 'shoal: no leader change in the loaded run', pass: ch === null ? null : ch === 0, detail: `${ch ?? '-'} change(s)` })
  return out
}

export function table(o: { shoal?: SystemResults; etcd?: SystemResults; clientsStability: number; stabilitySeconds: number; trials: number }): string {
  const { shoal, etcd } = o
  const lines: string[] = []
  const labels = [...new Set([...(shoal?.puts ?? []), ...(etcd?.puts ?? [])].map((p) => p.label))]
  lines.push(`${'var put, 256 B values'.padEnd(28)} ${pad('shoal ops/s', 11)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} | ${pad('etcd ops/s', 11)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} | ratio`)
  const errorNotes: string[] = []
  for (const label of labels) {
    const s = shoal?.puts.find((p) => p.label === label)?.result
    const e = etcd?.puts.find((p) => p.label === label)?.result
    const ratio = s && e && e.opsPerSec > 0 ? `${(s.opsPerSec / e.opsPerSec).toFixed(2)}×` : '-'
    lines.push(`  ${label.padEnd(26)} ${loadCells(s)} | ${loadCells(e)} | ${ratio}`)
    for (const [sys, r] of [['shoal', s], ['etcd', e]] as const) {
      if (r?.errors) errorNotes.push(`  (${sys}, ${label}: ${r.errors} failed writes, first: ${r.firstError})`)
    }
  }
  lines.push(...errorNotes)
  lines.push('')
  const fo = (s?: SystemResults) => (s ? `${pad(num(s.failover.medianMs, 0), 7)} ${pad(num(s.failover.maxMs, 0), 7)}` : `${pad('-', 7)} ${pad('-', 7)}`)
  const trialsOf = (s?: SystemResults) => (s?.failover.trials.length ? s.failover.trials.map((t) => num(t.ms, 0)).join(' ') : '-')
  lines.push(`${'leader failover (kill -9)'.padEnd(28)} ${pad('shoal median', 12)} ${pad('max', 7)} | ${pad('etcd median', 11)} ${pad('max', 7)}`)
  lines.push(`  ${`ms to first write, ${o.trials} trials`.padEnd(26)} ${pad(fo(shoal), 20)} | ${pad(fo(etcd), 19)}`)
  lines.push(`    shoal trials: ${trialsOf(shoal)}`)
  lines.push(`    etcd trials:  ${trialsOf(etcd)}`)
  lines.push('')
  lines.push(`loaded run, ${o.clientsStability} clients, ${o.stabilitySeconds} s, no faults`)
  for (const s of [shoal, etcd]) {
    if (!s?.stability) continue
    const st = s.stability
    lines.push(`  ${s.system.padEnd(6)} leader changes: ${st.leaderChanges}, elections: ${st.elections ?? '-'}, no leader in ${st.samplesWithoutLeader}/${st.samples} polls (slowest ${num(st.slowestPollMs, 0)} ms), ${num(st.load.opsPerSec, 0)} ops/s, p99 ${num(st.load.p99Ms, 2)} ms, max ${num(st.load.maxMs, 0)} ms, failed writes: ${st.load.errors}`)
    if (st.leaderChanges > 0 || st.elections) {
      if (st.load.firstError) lines.push(`         first failed write: ${st.load.firstError}`)
      const shown = st.events.filter((e) => /WARN|leader|elect|term/i.test(e)).slice(0, 12)
      if (shown.length) lines.push(`         member log during the run${st.events.length > shown.length ? ` (${shown.length} of ${st.events.length} lines, all in the JSON)` : ''}:`)
      for (const e of shown) lines.push(`           ${e}`)
    }
  }
  lines.push('')
  lines.push('targets (informational)')
  for (const t of targets(shoal, etcd)) lines.push(`  ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS'}  ${t.name.padEnd(44)} ${t.detail}`)
  return lines.join('\n')
}
