// Checks a recorded history file: node test/jepsen-lite/check.ts FILE [--json]
// Exit 0 valid, 1 invalid, 2 unknown (search gave up), 3 the file is not a usable history.
import { readFile } from 'node:fs/promises'
import { checkHistory, type CheckResult } from './checker.ts'
import { HistoryError, parseHistory, type ParsedHistory } from './history.ts'
import { describeCheck } from './report.ts'

export async function checkFile(file: string): Promise<{ parsed: ParsedHistory; result: CheckResult }> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new HistoryError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const parsed = parseHistory(text, file)
  return { parsed, result: checkHistory(parsed.ops) }
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json')
  const files = argv.filter((a) => a !== '--json')
  if (files.length !== 1) {
    process.stderr.write('usage: node test/jepsen-lite/check.ts HISTORY.jsonl [--json]\n')
    return 3
  }
  try {
    const { parsed, result } = await checkFile(files[0]!)
    if (json) process.stdout.write(JSON.stringify({ verdict: result.verdict, keys: result.keys.map(({ deepest: _d, window: _w, ...k }) => k) }, null, 2) + '\n')
    else process.stdout.write(describeCheck(result, parsed.ops) + '\n')
    return result.verdict === 'valid' ? 0 : result.verdict === 'invalid' ? 1 : 2
  } catch (err) {
    if (err instanceof HistoryError) {
      process.stderr.write(`error: ${err.message}\n`)
      return 3
    }
    throw err
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2))
