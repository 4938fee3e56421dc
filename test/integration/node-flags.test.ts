// `node drain` and `node eligibility` refuse contradictory or malformed flags
// before they reach any agent: a clear error and exit 1.
import test from 'ava'
import { runCli } from '../harness/agent.ts'

const NOWHERE = 'http://127.0.2.99:9' // nothing listens: a flag error must come first

for (const [args, re] of [
  [['node', 'drain', 'n1'], /give exactly one of --enable or --disable/],
  [['node', 'drain', 'n1', '--enable', '--disable'], /give exactly one of --enable or --disable/],
  [['node', 'drain', 'n1', '--enable', '--deadline', 'soon'], /--deadline: must be a duration like "1h" or "30m" \(got "soon"\)/],
  [['node', 'drain', 'n1', '--enable', '--force', '--no-deadline'], /give at most one of --deadline, --no-deadline and --force/],
  [['node', 'drain', 'n1', '--enable', '--deadline', '1h', '--force'], /give at most one of --deadline, --no-deadline and --force/],
  [['node', 'drain', 'n1', '--disable', '--ignore-system'], /--ignore-system: only with --enable/],
  [['node', 'drain', 'n1', '--enable', '--keep-ineligible'], /--keep-ineligible: only with --disable/],
  [['node', 'eligibility', 'n1'], /give exactly one of --enable or --disable/],
  [['node', 'eligibility', 'n1', '--enable', '--disable'], /give exactly one of --enable or --disable/],
] as const) {
  test(`shoal ${args.join(' ')}`, async (t) => {
    const r = await runCli([...args], NOWHERE)
    t.is(r.code, 1, r.stdout + r.stderr)
    t.regex(r.stderr, re)
  })
}
