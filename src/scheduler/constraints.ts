// The language of constraints and affinities: `${...}` targets resolved on a
// node, and the operators comparing them. Pure; the validator uses the same
// parsers so that whatever it accepts, the scheduler understands.
import type { Affinity, Constraint, ConstraintOperator, Node } from '../structs/index.ts'

// --- Targets -----------------------------------------------------------------

export type Target =
  | { kind: 'literal'; value: string }
  | { kind: 'node'; field: 'name' | 'id' }
  | { kind: 'attr' | 'meta'; key: string }

export const TARGET_FORMS = '${node.name}, ${node.id}, ${attr.<key>}, ${meta.<key>}'

/** Parses a constraint side: a literal, or exactly one `${...}` interpolation. A string as the problem otherwise. */
export function parseTarget(s: string): Target | string {
  if (!s.includes('${')) return { kind: 'literal', value: s }
  const m = /^\$\{([^{}]*)\}$/.exec(s)
  if (!m) return `must be a literal or one interpolation such as \${meta.rack} (known forms: ${TARGET_FORMS})`
  const inner = m[1]!.trim()
  if (inner === 'node.name' || inner === 'node.unique.name') return { kind: 'node', field: 'name' }
  if (inner === 'node.id' || inner === 'node.unique.id') return { kind: 'node', field: 'id' }
  const dot = inner.indexOf('.')
  const scope = dot < 0 ? inner : inner.slice(0, dot)
  const key = dot < 0 ? '' : inner.slice(dot + 1)
  if ((scope === 'attr' || scope === 'meta') && key !== '') return { kind: scope, key }
  if (scope === 'attr' || scope === 'meta') return `\${${scope}.<key>} needs a key, like \${${scope === 'attr' ? 'attr.os.name' : 'meta.rack'}}`
  return `unknown interpolation ${JSON.stringify(s)} (known forms: ${TARGET_FORMS})`
}

/** The value of a target on a node; undefined when the node does not have it. */
export function resolve(t: Target, node: Node): string | undefined {
  switch (t.kind) {
    case 'literal': return t.value
    case 'node': return node[t.field]
    case 'attr': return Object.hasOwn(node.attributes, t.key) ? node.attributes[t.key] : undefined
    case 'meta': return Object.hasOwn(node.meta, t.key) ? node.meta[t.key] : undefined
  }
}

/** Parsed targets by text: job files hold few distinct ones. Bounded, and pure, so sharing it is safe. */
const parsed = new Map<string, Target | string>()
const MAX_PARSED = 4096

/** resolve() of a target given as text (already validated). */
export function resolveText(s: string, node: Node): string | undefined {
  let t = parsed.get(s)
  if (t === undefined) {
    t = parseTarget(s)
    if (parsed.size >= MAX_PARSED) parsed.clear()
    parsed.set(s, t)
  }
  return typeof t === 'string' ? undefined : resolve(t, node)
}

// --- Versions ----------------------------------------------------------------

/** Numeric segments of a dotted version ("v1.2.3", "6.8.0-1017-aws" → [6, 8, 0]); suffixes after the numbers are ignored. */
export function parseVersion(s: string): number[] | undefined {
  const m = /^\s*v?(\d+(?:\.\d+)*)(?:[-+~_][0-9A-Za-z.+~_-]*)?\s*$/.exec(s)
  if (!m) return undefined
  const parts = m[1]!.split('.').map(Number)
  return parts.every(Number.isSafeInteger) ? parts : undefined
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return 0
}

const VERSION_OPS = ['>=', '<=', '!=', '~>', '=', '>', '<'] as const
type VersionOp = (typeof VERSION_OPS)[number]
export interface VersionClause { op: VersionOp; version: number[] }

/** ">= 1.2, < 2.0" → clauses, all of which must hold; a string as the problem when it does not parse. */
export function parseVersionRange(s: string): VersionClause[] | string {
  const clauses: VersionClause[] = []
  for (const raw of s.split(',')) {
    const part = raw.trim()
    const op = VERSION_OPS.find((o) => part.startsWith(o)) ?? '='
    const rest = part.slice(part.startsWith(op) ? op.length : 0).trim()
    const version = parseVersion(rest)
    if (!version) return `${JSON.stringify(part)} is not a version constraint like ">= 1.2" (operators ${VERSION_OPS.join(' ')}; clauses separated by ",")`
    clauses.push({ op, version })
  }
  return clauses
}

function clauseHolds(v: readonly number[], c: VersionClause): boolean {
  const d = compareVersions(v, c.version)
  switch (c.op) {
    case '=': return d === 0
    case '!=': return d !== 0
    case '>': return d > 0
    case '>=': return d >= 0
    case '<': return d < 0
    case '<=': return d <= 0
    case '~>': {
      // Pessimistic: "~> 1.2" is >= 1.2, < 2; "~> 1.2.3" is >= 1.2.3, < 1.3.
      if (d < 0) return false
      if (c.version.length < 2) return true
      const upper = c.version.slice(0, -1)
      upper[upper.length - 1]! += 1
      return compareVersions(v, upper) < 0
    }
  }
}

// --- Operators -----------------------------------------------------------------

/** Numeric when both sides are numbers, else lexical. */
function compareOrder(l: string, r: string): number {
  const isNum = (s: string) => s.trim() !== '' && Number.isFinite(Number(s))
  if (isNum(l) && isNum(r)) return Math.sign(Number(l) - Number(r))
  return l < r ? -1 : l > r ? 1 : 0
}

const setOf = (s: string) => new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))

/** A problem with a literal value for an operator (invalid regexp or version range), or null. */
export function valueProblem(op: ConstraintOperator, value: string): string | null {
  const t = parseTarget(value)
  // An interpolated value is only known per node; a bad one just fails there.
  if (typeof t === 'string' || t.kind !== 'literal') return null
  if (op === 'regexp') {
    try {
      new RegExp(value)
    } catch (err) {
      return `is not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`
    }
  }
  if (op === 'version') {
    const r = parseVersionRange(value)
    if (typeof r === 'string') return r
  }
  return null
}

export type Outcome =
  | { ok: true }
  | { ok: false; missing: string }
  | { ok: false; missing?: undefined; why: string }

interface Rule {
  attribute: string
  operator: ConstraintOperator
  value: string
}

/** A rule compiled once per scheduling pass; `test` says whether a node satisfies it and why not. */
export interface CompiledRule {
  readonly rule: Rule
  /** "constraint ${meta.rack} != a": the reason nodes are filtered for. */
  readonly label: string
  test(node: Node): Outcome
}

export function ruleLabel(r: Rule): string {
  return ['constraint', r.attribute, r.operator, r.value].filter((s) => s !== '').join(' ')
}

/** Compiles an attribute rule (every operator but distinct_hosts and distinct_property). */
export function compileRule(rule: Rule): CompiledRule {
  const left = parseTarget(rule.attribute)
  const right = parseTarget(rule.value)
  const cache = new Map<string, RegExp | VersionClause[] | null>()
  const compiled = <T>(r: string, make: () => T): T | null => {
    if (!cache.has(r)) {
      try {
        cache.set(r, make() as RegExp | VersionClause[])
      } catch {
        cache.set(r, null)
      }
    }
    return cache.get(r) as T | null
  }
  // Node values repeat across a cluster: parse each distinct one once per rule.
  const sets = new Map<string, Set<string>>()
  const versions = new Map<string, number[] | undefined>()
  return {
    rule,
    label: ruleLabel(rule),
    test(node) {
      const l = typeof left === 'string' ? undefined : resolve(left, node)
      if (rule.operator === 'is_set') return l !== undefined ? OK : { ok: false, missing: rule.attribute }
      if (rule.operator === 'is_not_set') return l === undefined ? OK : { ok: false, why: `${rule.attribute} is set to ${JSON.stringify(l)}` }
      if (l === undefined) return { ok: false, missing: rule.attribute }
      const r = typeof right === 'string' ? undefined : resolve(right, node)
      if (r === undefined) return { ok: false, missing: rule.value }
      // The explanation is only built for nodes that fail.
      const no = (suffix = ''): Outcome => ({ ok: false, why: `${rule.attribute} is ${JSON.stringify(l)}${suffix}` })
      switch (rule.operator) {
        case '=': return l === r ? OK : no()
        case '!=': return l !== r ? OK : no()
        case '<': return compareOrder(l, r) < 0 ? OK : no()
        case '<=': return compareOrder(l, r) <= 0 ? OK : no()
        case '>': return compareOrder(l, r) > 0 ? OK : no()
        case '>=': return compareOrder(l, r) >= 0 ? OK : no()
        case 'regexp': {
          const re = compiled(r, () => new RegExp(r))
          if (!re) return { ok: false, why: `${JSON.stringify(r)} is not a valid regular expression` }
          return re.test(l) ? OK : no()
        }
        case 'set_contains': {
          const have = memo(sets, l, setOf)
          const lacking = [...memo(sets, r, setOf)].filter((x) => !have.has(x))
          return lacking.length === 0 ? OK : no(`, without ${lacking.join(',')}`)
        }
        case 'version': {
          const range = compiled(r, () => {
            const p = parseVersionRange(r)
            if (typeof p === 'string') throw new Error(p)
            return p
          })
          if (!range) return { ok: false, why: `${JSON.stringify(r)} is not a version constraint` }
          const v = memo(versions, l, parseVersion)
          if (!v) return no(', not a version')
          return range.every((c) => clauseHolds(v, c)) ? OK : no()
        }
        default:
          return { ok: false, why: `operator ${rule.operator} does not compare attributes` }
      }
    },
  }
}

const OK: Outcome = Object.freeze({ ok: true })
const MAX_MEMO = 4096

/** f(key), remembered in `cache` (cleared when it grows past MAX_MEMO: values must not be mutated). */
function memo<T>(cache: Map<string, T>, key: string, f: (key: string) => T): T {
  if (cache.has(key)) return cache.get(key) as T
  const v = f(key)
  if (cache.size >= MAX_MEMO) cache.clear()
  cache.set(key, v)
  return v
}

export function compileAffinity(a: Affinity): CompiledRule & { weight: number } {
  return { ...compileRule(a), weight: a.weight }
}

export function isAttributeRule(c: Constraint): boolean {
  return c.operator !== 'distinct_hosts' && c.operator !== 'distinct_property'
}
