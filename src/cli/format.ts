// Plain-text rendering for the CLI: aligned tables and relative times.
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')
}

export function keyValues(pairs: [string, string | number][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${k.padEnd(width)} = ${v}`).join('\n')
}

export function ago(time: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - time) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s ago`
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`
}

export function shortId(id: string): string {
  return id.slice(0, 8)
}

/** Node ids are libp2p PeerIds, which share their first characters: show the distinctive end. */
export function shortNodeId(id: string): string {
  return id.length > 12 ? `…${id.slice(-8)}` : id
}
