// Command-line flags of the benchmark scripts: `--help` prints the usage; a bad
// flag or value ends the run with a message naming it (exit 1), never a stack trace.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

export interface BenchCli {
  die(message: string): never
  /** Whole numbers ≥ `min`. */
  count(flag: string, value: string, min: number): number
  /** Numbers > 0 (seconds, durations). */
  positive(flag: string, value: string): number
  /** Numbers ≥ 0. */
  nonNegative(flag: string, value: string): number
}

export function benchCli(prog: string, usage: string): BenchCli {
  const die = (message: string): never => {
    console.error(`${prog}: ${message}`)
    process.exit(1)
  }
  const number = (flag: string, value: string, ok: (n: number) => boolean, what: string): number => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || !ok(n)) die(`--${flag}: expected ${what}, got "${value}"\n${usage}`)
    return n
  }
  return {
    die,
    count: (flag, value, min) => number(flag, value, (n) => Number.isInteger(n) && n >= min, `a whole number ≥ ${min}`),
    positive: (flag, value) => number(flag, value, (n) => n > 0, 'a positive number'),
    nonNegative: (flag, value) => number(flag, value, (n) => n >= 0, 'a number ≥ 0'),
  }
}

/** parseArgs of this process's flags; `--help`/`-h`: usage on stdout, exit 0; an unknown flag or a missing value: exit 1 with the usage. */
export function parseBenchFlags<O extends ParseArgsOptionsConfig>(prog: string, usage: string, options: O) {
  const args = process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage)
    process.exit(0)
  }
  try {
    return parseArgs({ args, options }).values
  } catch (err) {
    console.error(`${prog}: ${(err as Error).message}\n${usage}`)
    process.exit(1)
  }
}
