// Flag tables: one description of a command's flags, read both by the
// command-line parser below and by oclif (src/commands/flag-table.ts builds the
// oclif flags from it). bin/shoal.js runs a few commands without loading
// @oclif/core (the agent, which would keep its ~160 modules resident, and
// `job run`, whose start-up is on the path to a running container); the table
// makes both front-ends parse the same flags.

export type FlagSpec =
  | { type: 'boolean'; description: string; default: boolean }
  | { type: 'string'; description: string; default?: string; multiple?: false; env?: string }
  | { type: 'string'; description: string; default: string[]; multiple: true }
  | { type: 'integer'; description: string; default?: number; min?: number }

/** What a flag of a table parses to (no default: may be absent). */
type FlagValue<S> = S extends { type: 'boolean' } ? boolean
  : S extends { type: 'integer'; default: number } ? number
  : S extends { type: 'integer' } ? number | undefined
  : S extends { multiple: true } ? string[]
  : S extends { default: string } ? string
  : string | undefined

/** The parsed flags of a table, so the two cannot drift. */
export type FlagsOf<T> = { -readonly [K in keyof T]: FlagValue<T[K]> }

/**
 * The flags and positional arguments of a plain command line (`--flag value`,
 * `--flag=value`, each flag of the table, repeatable ones repeated, at most
 * `maxArgs` positional arguments), or undefined for anything else: help, an
 * unknown or repeated flag, too many arguments, a value that is empty, starts
 * with "-" or is not a valid integer, an empty environment variable. oclif
 * parses those (and prints its help or its error).
 */
export function parsePlainArgs<T extends Record<string, FlagSpec>>(
  table: T, argv: readonly string[], maxArgs = 0, env: NodeJS.ProcessEnv = process.env,
): { flags: FlagsOf<T>; args: string[] } | undefined {
  const specs: Record<string, FlagSpec> = table
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.type === 'string' && !spec.multiple && spec.env !== undefined && env[spec.env] !== undefined) {
      if (env[spec.env] === '') return undefined
      out[name] = env[spec.env]
    } else if (spec.default !== undefined) {
      out[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default
    }
  }
  const args: string[] = []
  const seen = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('-')) {
      if (args.length >= maxArgs) return undefined
      args.push(arg)
      continue
    }
    if (!arg.startsWith('--')) return undefined
    const eq = arg.indexOf('=')
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    const spec = Object.hasOwn(specs, name) ? specs[name]! : undefined
    if (!spec) return undefined
    const repeated = seen.has(name)
    seen.add(name)
    if (spec.type === 'boolean') {
      if (eq >= 0 || repeated) return undefined
      out[name] = true
      continue
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
    if (value === undefined || value === '' || value.startsWith('-')) return undefined
    if (spec.type === 'string' && spec.multiple) {
      out[name] = [...(repeated ? (out[name] as string[]) : []), value]
      continue
    }
    if (repeated) return undefined
    if (spec.type === 'integer') {
      if (!/^\d+$/.test(value)) return undefined
      const n = Number.parseInt(value, 10)
      if (spec.min !== undefined && n < spec.min) return undefined
      out[name] = n
    } else {
      out[name] = value
    }
  }
  return { flags: out as FlagsOf<T>, args }
}
