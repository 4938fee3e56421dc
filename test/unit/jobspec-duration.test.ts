import test from 'ava'
import { formatDuration, parseDuration, tryParseDuration } from '../../src/jobspec/index.ts'

const valid: [string, number][] = [
  ['0', 0],
  ['0s', 0],
  ['500ms', 500],
  ['5s', 5_000],
  ['2m', 120_000],
  ['1h', 3_600_000],
  ['1h30m', 5_400_000],
  ['1.5s', 1_500],
  ['1.1s', 1_100],
  ['0.3s', 300],
  ['1.25m', 75_000],
  ['2m5s', 125_000],
  ['1h0m0.5s', 3_600_500],
  ['24h', 86_400_000],
  ['1m500ms', 60_500],
  ['1.0004s', 1_000],
  ['1.0005s', 1_001],
]

for (const [text, ms] of valid) {
  test(`parseDuration(${JSON.stringify(text)}) is ${ms} ms`, (t) => {
    t.is(parseDuration(text), ms)
    t.is(tryParseDuration(text), ms)
  })
}

const invalid = ['', ' ', '5', '10', 's', '5 s', ' 5s', '5s ', '5sec', '5S', '-5s', '+5s', '1d', '5us', '5ns', '.5s', '5.s', '1h-30m', '1e3ms', 'abc', '99999999999999999999h']

for (const text of invalid) {
  test(`parseDuration(${JSON.stringify(text)}) is rejected`, (t) => {
    t.is(tryParseDuration(text), undefined)
    const err = t.throws(() => parseDuration(text))
    t.is(err?.message, `invalid duration ${JSON.stringify(text)}: must be a duration string like "5s" or "2m"`)
  })
}

test('tryParseDuration rejects values that are not strings', (t) => {
  for (const v of [5, 5000, null, undefined, true, ['5s'], { s: 5 }]) t.is(tryParseDuration(v), undefined)
})

test('formatDuration picks the shortest natural form', (t) => {
  t.is(formatDuration(0), '0s')
  t.is(formatDuration(1), '1ms')
  t.is(formatDuration(500), '500ms')
  t.is(formatDuration(999), '999ms')
  t.is(formatDuration(1_000), '1s')
  t.is(formatDuration(1_500), '1.5s')
  t.is(formatDuration(1_050), '1.05s')
  t.is(formatDuration(1_001), '1.001s')
  t.is(formatDuration(5_000), '5s')
  t.is(formatDuration(90_000), '1m30s')
  t.is(formatDuration(120_000), '2m')
  t.is(formatDuration(3_600_000), '1h')
  t.is(formatDuration(5_400_000), '1h30m')
  t.is(formatDuration(3_600_500), '1h0.5s')
  t.is(formatDuration(86_400_000), '24h')
  t.is(formatDuration(90_061_001), '25h1m1.001s')
})

test('formatDuration rounds fractions of a millisecond and signs negatives', (t) => {
  t.is(formatDuration(1.4), '1ms')
  t.is(formatDuration(0.2), '0s')
  t.is(formatDuration(-1_500), '-1.5s')
  t.is(formatDuration(-0.2), '0s')
  t.throws(() => formatDuration(Number.NaN), { instanceOf: RangeError })
  t.throws(() => formatDuration(Infinity), { instanceOf: RangeError })
})

test('formatDuration and parseDuration round-trip', (t) => {
  const samples = [0, 1, 7, 999, 1_000, 1_001, 1_010, 1_100, 59_999, 60_000, 60_001, 3_599_999, 3_600_000, 3_600_001, 86_400_000, 123_456_789]
  // Plus a deterministic spread of awkward values.
  let x = 17
  for (let i = 0; i < 500; i++) {
    x = (x * 48_271) % 2_147_483_647
    samples.push(x % 10_000_000, x)
  }
  for (const ms of samples) t.is(parseDuration(formatDuration(ms)), ms, `round trip of ${ms}`)
  for (const text of ['500ms', '5s', '2m', '1h', '1h30m', '1.5s', '24h', '1h0.5s']) {
    t.is(formatDuration(parseDuration(text)), text)
  }
})
