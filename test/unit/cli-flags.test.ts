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
})

test('anything unusual is left to oclif (its help and its errors): undefined', (t) => {
  for (const argv of [
    ['--help'], ['-h'], ['--bogus'], ['positional'], ['--voters', 'x'], ['--voters', '-1'], ['--snapshot-threshold', '0'],
    ['--http'], ['--http', ''], ['--http', '--dev'], ['--dev=true'], ['--dev', '--dev'], ['--http', 'a:1', '--http', 'b:2'],
  ]) t.is(parseAgentArgs(argv), undefined, argv.join(' '))
})
