// Randomized churn across many seeds. On failure the message names the seed;
// replay one with e.g.
//   RAFT_SEED=123 node_modules/.bin/ava test/unit/raft/churn.test.ts
// and run more seeds locally with RAFT_SEEDS=5000 (RAFT_STEPS changes the
// length of each run).
import test from 'ava'
import { runChurn } from './churn.ts'
import { seeds } from './sim.ts'

const STEPS = Number(process.env.RAFT_STEPS ?? 500)

function churn(title: string, membership: boolean, count: number, base: number): void {
  test(title, (t) => {
    const failures: string[] = []
    let acked = 0
    let reads = 0
    const list = seeds(count, base)
    for (const seed of list) {
      try {
        const r = runChurn({ seed, steps: STEPS, membership })
        acked += r.acked
        reads += r.reads
      } catch (e) {
        failures.push(`${(e as Error).message}\n  replay: RAFT_SEED=${seed} node_modules/.bin/ava test/unit/raft/churn.test.ts --match '${title}'`)
        if (failures.length >= 3) break
      }
    }
    if (failures.length > 0) {
      t.fail(failures.join('\n\n'))
      return
    }
    t.log(`${list.length} seeds x ${STEPS} steps: ${acked} writes committed, ${reads} linearizable reads checked`)
    t.true(acked > list.length * 10, 'the runs made progress')
  })
}

churn('churn: crashes, partitions, lossy network, snapshots, transfers', false, 300, 1)
churn('churn: the same plus random membership changes', true, 300, 100_001)
