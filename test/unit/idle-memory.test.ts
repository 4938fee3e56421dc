import test from 'ava'
import { IdleMemoryPolicy, IdleMemoryReducer, type IdleMemoryOptions } from '../../src/agent/idle-memory.ts'

const MiB = 1024 * 1024
const opts: IdleMemoryOptions = { quietUtilization: 0.05, quietTicks: 3, minGrowth: 4 * MiB }

test('runs after the given number of quiet ticks in a row; a busy tick starts the count again', (t) => {
  const p = new IdleMemoryPolicy(opts)
  t.false(p.tick(0.01, 100 * MiB))
  t.false(p.tick(0.01, 100 * MiB))
  t.false(p.tick(0.30, 100 * MiB), 'busy')
  t.false(p.tick(0.01, 100 * MiB))
  t.false(p.tick(0.049, 100 * MiB))
  t.true(p.tick(0.0, 100 * MiB))
})

test('after a GC, runs again only once the RSS has grown by minGrowth beyond what the GC left', (t) => {
  const p = new IdleMemoryPolicy(opts)
  for (let i = 0; i < 2; i++) p.tick(0, 100 * MiB)
  t.true(p.tick(0, 100 * MiB))
  p.reduced(80 * MiB)
  for (let i = 0; i < 10; i++) t.false(p.tick(0, 83 * MiB), 'grew by less than minGrowth: never again, however long it stays quiet')
  t.false(p.tick(0.5, 103 * MiB), 'a burst')
  t.false(p.tick(0, 103 * MiB))
  t.false(p.tick(0, 103 * MiB))
  t.true(p.tick(0, 103 * MiB), 'quiet again after growing')
})

test('the reducer calls gc when the policy says so and reports what it gave back', (t) => {
  const readings = [{ u: 0.5, rss: 100 }, { u: 0, rss: 100 }, { u: 0, rss: 100 }, { u: 0, rss: 100 }, { u: 0, rss: 82 }, { u: 0, rss: 82 }]
  let i = 0
  let rss = 0
  let gcs = 0
  const reducer = new IdleMemoryReducer({
    utilization: () => readings[i]!.u,
    rss: () => rss,
    gc: () => {
      gcs++
      rss = 80 * MiB
    },
  }, opts)
  const given: (number | undefined)[] = []
  for (i = 0; i < readings.length; i++) {
    rss = readings[i]!.rss * MiB
    given.push(reducer.tick())
  }
  t.is(gcs, 1)
  t.deepEqual(given, [undefined, undefined, undefined, 20 * MiB, undefined, undefined])
})
