import test from 'ava'
import { Semaphore } from '../../src/runtime/semaphore.ts'

test('at most `limit` run at once, the others in arrival order; a failure frees its slot', async (t) => {
  const s = new Semaphore(2)
  let running = 0
  let peak = 0
  const order: number[] = []
  const job = (i: number, fail = false) => s.run(async () => {
    running++
    peak = Math.max(peak, running)
    order.push(i)
    await new Promise((r) => setTimeout(r, 10))
    running--
    if (fail) throw new Error(`job ${i}`)
    return i
  })
  const results = await Promise.allSettled([job(1), job(2, true), job(3), job(4), job(5)])
  t.is(peak, 2)
  t.deepEqual(order, [1, 2, 3, 4, 5])
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
  t.is(await s.run(async () => 'free again'), 'free again')
  t.throws(() => new Semaphore(0), { instanceOf: RangeError })
})
