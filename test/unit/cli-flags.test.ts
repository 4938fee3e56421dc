import test from 'ava'
import { parseAgentArgs } from '../../src/cli/agent.ts'

test('a plain agent command line parses without oclif, with the defaults of the flag table', (t) => {
  const f = parseAgentArgs(['--dev', '--http', '127.0.0.1:4700', '--meta=rack=r1', '--meta', 'zone=z', '--voters', '5', '--snapshot-threshold=100'])!
  t.truthy(f)
  t.is(f.dev, true)
  t.is(f.http, '127.0.0.1:4700')
  t.deepEqual(f.meta, ['rack=r1', 'zone=z'], 'repeatable flags collect in order')
  t.is(f.voters, 5)
  t.is(f['snapshot-threshold'], 100)
  t.is(f.bind, '127.0.0.1', 'defaults fill what is not given')
  t.deepEqual(f.join, [])
  t.is(f['mesh-datapath'], 'auto')
  t.deepEqual(parseAgentArgs([])?.voters, 3)
  t.is(f['gc-threshold'], undefined, 'no default in the table: the agent falls back to fsm/gc.ts')
  t.is(parseAgentArgs(['--gc-threshold', '10m', '--gc-interval=30s'])?.['gc-interval'], '30s')
})

test('anything unusual is left to oclif (its help and its errors): undefined', (t) => {
  for (const argv of [
    ['--help'], ['-h'], ['--bogus'], ['positional'], ['--voters', 'x'], ['--voters', '-1'], ['--snapshot-threshold', '0'],
    ['--http'], ['--http', ''], ['--http', '--dev'], ['--dev=true'], ['--dev', '--dev'], ['--http', 'a:1', '--http', 'b:2'],
  ]) t.is(parseAgentArgs(argv), undefined, argv.join(' '))
})

test('a flag table parses positional arguments up to its limit, and an address from the environment', async (t) => {
  const { parsePlainArgs } = await import('../../src/cli/flags.ts')
  const { API_FLAGS } = await import('../../src/cli/api-flags.ts')
  const { JOB_RUN_FLAGS } = await import('../../src/cli/job-run.ts')
  const table = { ...API_FLAGS, ...JOB_RUN_FLAGS }
  const p = parsePlainArgs(table, ['web.json', '--detach', '--check-index', '0'], 1, {})!
  t.deepEqual(p.args, ['web.json'])
  t.is(p.flags.detach, true)
  t.is(p.flags['check-index'], 0)
  t.is(p.flags.timeout, 60)
  t.is(p.flags.address, 'http://127.0.0.1:4680', 'the default address')
  t.is(parsePlainArgs(table, ['web.json'], 1, {})!.flags['check-index'], undefined, 'no default: absent')
  t.is(parsePlainArgs(table, ['web.json'], 1, { SHOAL_ADDR: '10.0.0.1:4680' })!.flags.address, '10.0.0.1:4680', 'SHOAL_ADDR')
  t.is(parsePlainArgs(table, ['web.json', '--address', 'a:1'], 1, { SHOAL_ADDR: 'b:2' })!.flags.address, 'a:1', 'the flag wins over the environment')
  for (const argv of [['a.json', 'b.json'], ['web.json', '--json'], ['web.json', '--timeout', '0'], ['-'], ['web.json', '--', 'x']]) {
    t.is(parsePlainArgs(table, argv, 1, {}), undefined, argv.join(' '))
  }
  t.is(parsePlainArgs(table, ['web.json'], 1, { SHOAL_ADDR: '' }), undefined, 'an empty SHOAL_ADDR is left to oclif')
})
