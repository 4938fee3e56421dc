// Durations in job files are Go-style strings: "500ms", "5s", "2m", "1h30m", "1.5s".
// Shoal holds them as whole milliseconds.

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

const WHOLE_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const PART_RE = /(\d+)(?:\.(\d+))?(ms|s|m|h)/g

export const DURATION_HINT = 'must be a duration string like "5s" or "2m"'

/**
 * Parses a duration string into milliseconds (rounded to a whole millisecond),
 * or returns undefined when `s` is not a valid duration. Units: ms, s, m, h;
 * they may be combined ("1h30m") and carry a decimal fraction ("1.5s"). "0" is
 * accepted as zero, as in Go. Negative durations are not.
 */
export function tryParseDuration(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined
  if (s === '0') return 0
  if (!WHOLE_RE.test(s)) return undefined
  let total = 0
  for (const m of s.matchAll(PART_RE)) {
    const unit = UNIT_MS[m[3]]
    total += Number(m[1]) * unit
    const frac = m[2]
    // Scale the fraction from its digits so "1.1s" is exactly 1100, not 1100.0000000000002.
    if (frac !== undefined) total += (Number(frac) * unit) / 10 ** frac.length
  }
  const ms = Math.round(total)
  return Number.isSafeInteger(ms) ? ms : undefined
}

/** Parses a duration string into milliseconds; throws on anything else. */
export function parseDuration(s: string): number {
  const ms = tryParseDuration(s)
  if (ms === undefined) {
    throw new Error(`invalid duration ${JSON.stringify(s)}: ${DURATION_HINT}`)
  }
  return ms
}

/**
 * Formats milliseconds as the shortest duration string parseDuration reads back
 * to the same value: 0 → "0s", 500 → "500ms", 1500 → "1.5s", 5400000 → "1h30m".
 * Fractions of a millisecond are rounded away.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format ${ms} as a duration`)
  let n = Math.round(Math.abs(ms))
  const sign = ms < 0 && n !== 0 ? '-' : ''
  if (n === 0) return '0s'
  if (n < 1_000) return `${sign}${n}ms`
  const hours = Math.floor(n / UNIT_MS.h)
  n -= hours * UNIT_MS.h
  const minutes = Math.floor(n / UNIT_MS.m)
  n -= minutes * UNIT_MS.m
  let out = sign
  if (hours > 0) out += `${hours}h`
  if (minutes > 0) out += `${minutes}m`
  if (n > 0) {
    const whole = Math.floor(n / 1_000)
    const rest = n % 1_000
    out += rest === 0 ? `${whole}s` : `${whole}.${String(rest).padStart(3, '0').replace(/0+$/, '')}s`
  }
  return out
}
