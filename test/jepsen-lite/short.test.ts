// jepsen-lite in CI: short runs of the real 5-agent cluster under every nemesis
// (partitions, kill -9, SIGSTOP), two fixed seeds whose schedules cover leader
// pauses and kills, a majorities ring, a bridge and an isolated leader, plus one
// random seed (printed, so a failure can be replayed with run.ts --seed).
// Each run's history must be linearizable and the invariants must hold.
// Needs root (iptables); results land in test/jepsen-lite/results/.
import test from 'ava'
import { requireIptables } from '../harness/net.ts'
import { formatSummary } from './report.ts'
import { randomSeed } from './prng.ts'
import { runJepsen } from './runner.ts'

const SECONDS = 22
// 1: pause-leader, majorities ring, pause×2 + isolated leader.
// 9: kill-leader, pause + kill-leader, bridge.
const seeds: [string, number][] = [['fixed', 1], ['fixed', 9], ['random', randomSeed()]]

for (const [kind, seed] of seeds) {
  test.serial(`jepsen-lite: ${kind} seed ${seed}, ${SECONDS}s of partitions, kills and pauses → linearizable, invariants hold`, async (t) => {
    requireIptables()
    t.log(`seed ${seed} (replay: node test/jepsen-lite/run.ts --time ${SECONDS} --seed ${seed} --nemesis all --clients 6)`)
    t.timeout(170_000)
    const lines: string[] = []
    const summary = await runJepsen({
      seed, seconds: SECONDS, nemeses: ['partition', 'kill', 'pause'], clients: 6, keepData: false,
      log: (line) => lines.push(line),
    })
    t.log(formatSummary(summary))
    t.true(summary.ops.ok > 50, `the clients got work done (${summary.ops.ok} ok)`)
    t.true(summary.faults.injected >= 2, `faults were injected (${summary.faults.injected})`)
    t.is(summary.verdict, 'valid', `${formatSummary(summary)}\n\n${lines.slice(-80).join('\n')}`)
  })
}
