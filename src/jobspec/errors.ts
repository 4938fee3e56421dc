// Error values and the small text helpers the parser and validator share.

/** One problem in a job file. */
export interface FieldError {
  /** Dotted path in the file, e.g. "job.web.group.frontend.count"; "file" for whole-file problems. */
  field: string
  message: string
}

/** One error per line, as `field: message`. */
export function formatErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('\n')
}

export type PathSegment = string | number

const PLAIN_KEY_RE = /^[A-Za-z0-9_.-]+$/

/**
 * Renders a path as the dotted form used in error fields: ["job", "web", "args", 1]
 * → "job.web.args[1]". Keys that are empty or hold other characters are quoted:
 * job["my job"].
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (PLAIN_KEY_RE.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out === '' ? 'file' : out
}

/** Short description of a value for "(got ...)" in messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 37)}...` : v
      return JSON.stringify(s)
    }
    case 'number':
    case 'boolean':
      return String(v)
    case 'undefined':
      return 'nothing'
    case 'object':
      return 'an object'
    default:
      return `a ${typeof v}`
  }
}

/** Quoted, comma-separated list: "a", "b", "c". */
export function quoteList(items: readonly string[]): string {
  return items.map((i) => JSON.stringify(i)).join(', ')
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0))
  for (let i = 0; i < rows; i++) d[i][0] = i
  for (let j = 0; j < cols; j++) d[0][j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
      }
    }
  }
  return d[a.length][b.length]
}

/** The candidate closest to `input`, if one is close enough to be a likely typo. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '')
  const key = norm(input)
  if (key === '') return undefined
  const limit = key.length < 4 ? 1 : key.length < 8 ? 2 : 3
  let best: string | undefined
  let bestDist = Infinity
  for (const c of candidates) {
    const dist = editDistance(key, norm(c))
    if (dist < bestDist) {
      best = c
      bestDist = dist
    }
  }
  return bestDist <= limit ? best : undefined
}
