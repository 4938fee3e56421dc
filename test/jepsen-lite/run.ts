// Long jepsen-lite runs:
//   node test/jepsen-lite/run.ts --time SECONDS --seed N --nemesis partition,kill,pause|all --clients N
// Options: --keys N (default 5), --timeout MS (client request timeout, default 10000),
// --runs N (consecutive runs, seeds N, N+1, ...), --reads local (plain GETs without
// ?consistent: a deliberately non-linearizable read path, to see the checker catch it).
// Needs root (iptables).
// Exit 0 when every run is valid, 1 when one is invalid, 2 when one is unknown.
import { requireIptables } from '../harness/net.ts'
import { parseFamilies } from './nemesis.ts'
import { randomSeed } from './prng.ts'
import { activeClusters, runJepsen } from './runner.ts'

interface Args { time: number; seed: number; nemesis: string; clients: number; keys: number; timeout: number; runs: number; reads: string }

function parseArgs(argv: string[]): Args {
  const args: Args = { time: 60, seed: randomSeed(), nemesis: 'all', clients: 8, keys: 5, timeout: 10_000, runs: 1, reads: 'consistent' }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const [name, inline] = flag.startsWith('--') && flag.includes('=') ? flag.slice(2).split('=', 2) as [string, string] : [flag.replace(/^--/, ''), undefined]
    if (name === 'help' || name === 'h') {
      process.stdout.write('usage: node test/jepsen-lite/run.ts [--time SECONDS] [--seed N] [--nemesis partition,kill,pause|all|none] [--clients N] [--keys N] [--timeout MS] [--runs N] [--reads consistent|local]\n')
      process.exit(0)
    }
    if (!(name in args)) throw new Error(`unknown option ${flag} (see --help)`)
    const value = inline ?? argv[++i]
    if (value === undefined) throw new Error(`${flag} needs a value`)
    if (name === 'reads') {
      if (value !== 'consistent' && value !== 'local') throw new Error(`--reads must be consistent or local (got "${value}")`)
      args.reads = value
      continue
    }
    if (name === 'nemesis') {
      parseFamilies(value)
      args.nemesis = value
      continue
    }
    const n = Number(value)
    if (!Number.isInteger(n) || n < (name === 'seed' ? 0 : 1)) throw new Error(`--${name} must be a ${name === 'seed' ? 'non-negative' : 'positive'} integer (got "${value}")`)
    ;(args as unknown as Record<string, number>)[name] = n
  }
  return args
}

async function main(): Promise<number> {
  let args: Args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`)
    return 64
  }
  requireIptables()
  let interrupted = false
  const onSignal = async (sig: NodeJS.Signals) => {
    if (interrupted) return
    interrupted = true
    process.stderr.write(`\n${sig}: healing partitions and stopping agents…\n`)
    for (const c of activeClusters) await c.stop().catch(() => {})
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const verdicts: string[] = []
  for (let r = 0; r < args.runs; r++) {
    const summary = await runJepsen({ seed: args.seed + r, seconds: args.time, nemeses: parseFamilies(args.nemesis), clients: args.clients, keys: args.keys, timeoutMs: args.timeout, reads: args.reads as 'consistent' | 'local' })
    verdicts.push(summary.verdict)
  }
  return verdicts.includes('invalid') ? 1 : verdicts.includes('unknown') ? 2 : 0
}

process.exitCode = await main()
