// The jepsen-lite nemesis schedule: a pure function of the seed, bounded faults
// with gaps, only the enabled families, combinations of different families.
import test from 'ava'
import { familyOf, parseFamilies, planSchedule, type NemesisFamily } from '../jepsen-lite/nemesis.ts'
import { Random } from '../jepsen-lite/prng.ts'

test('same seed, same schedule; another seed, another schedule', (t) => {
  const o = { seconds: 300, families: ['partition', 'kill', 'pause'] as NemesisFamily[], agents: 5 }
  t.deepEqual(planSchedule({ ...o, seed: 42 }), planSchedule({ ...o, seed: 42 }))
  t.notDeepEqual(planSchedule({ ...o, seed: 42 }), planSchedule({ ...o, seed: 43 }))
})

test('faults are bounded, ordered with gaps, and healed before the end', (t) => {
  for (let seed = 0; seed < 50; seed++) {
    const plan = planSchedule({ seed, seconds: 120, families: ['partition', 'kill', 'pause'], agents: 5 })
    t.true(plan.length >= 5, `seed ${seed}: ${plan.length} faults`)
    let end = 0
    for (const p of plan) {
      t.true(p.duration >= 2 && p.duration <= 8, `duration ${p.duration}`)
      t.true(p.at >= end + 0.9, `fault at ${p.at} after the previous ended at ${end}`)
      end = p.at + p.duration
      t.true(p.faults.length === 1 || new Set(p.faults.map((f) => familyOf(f.kind))).size === 2, 'a combination mixes two families')
      for (const f of p.faults) {
        t.deepEqual([...f.order].sort(), [0, 1, 2, 3, 4])
        t.true(f.count >= 1 && f.count <= 2, 'never more than a minority of agents')
      }
    }
    t.true(end <= 120)
  }
})

test('only the enabled families; all kinds show up over a long schedule', (t) => {
  const plan = planSchedule({ seed: 7, seconds: 1800, families: ['pause'], agents: 5 })
  t.true(plan.every((p) => p.faults.every((f) => familyOf(f.kind) === 'pause')))
  const kinds = new Set(planSchedule({ seed: 7, seconds: 1800, families: parseFamilies('all'), agents: 5 }).flatMap((p) => p.faults.map((f) => f.kind)))
  t.deepEqual([...kinds].sort(), ['kill', 'kill-leader', 'partition-bridge', 'partition-halves', 'partition-leader', 'partition-ring', 'pause', 'pause-leader'])
  t.deepEqual(planSchedule({ seed: 7, seconds: 100, families: [], agents: 5 }), [])
})

test('--nemesis parsing', (t) => {
  t.deepEqual(parseFamilies('partition,kill'), ['partition', 'kill'])
  t.deepEqual(parseFamilies('all'), ['partition', 'kill', 'pause'])
  t.deepEqual(parseFamilies('none'), [])
  t.throws(() => parseFamilies('partition,clock'), { message: /unknown "clock"/ })
})

test('the PRNG is deterministic and forks are independent streams', (t) => {
  const a = new Random(1)
  const b = new Random(1)
  t.deepEqual([a.next(), a.next(), a.int(1, 6)], [b.next(), b.next(), b.int(1, 6)])
  const f1 = new Random(9).fork('x')
  const f2 = new Random(9).fork('y')
  t.not(f1.next(), f2.next())
  const r = new Random(3)
  for (let i = 0; i < 1000; i++) {
    const v = r.int(2, 4)
    t.true(v >= 2 && v <= 4)
  }
})
