// Reproduction of an availability problem jepsen-lite ran into (see docs/jepsen.md),
// kept as a regression check since the fix (e3db85d): an agent restarted on its data
// dir exited ("no cluster leader reachable within 7s") when no leader was reachable
// during startup — even when it was one of the voters needed to elect one. Kill every
// voter of a 5-agent cluster, then bring them back one at a time, GAP seconds apart:
// before the fix each exited before the next arrived and the cluster never got a
// leader (exit 1 here); restarted together, they recovered. Fixed: exit 0.
//   node test/jepsen-lite/repro-staggered-restart.ts [GAP_SECONDS=10]
// Needs nothing but loopback; results (logs, data) in test/jepsen-lite/results/.
import { join } from 'node:path'
import { Cluster, type MemberView, type SelfView } from './cluster.ts'
import { RESULTS_ROOT } from './runner.ts'

const gap = Number(process.argv[2] ?? 10)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const dir = join(RESULTS_ROOT, `${new Date().toISOString().replace(/[:.]/g, '-')}-repro-staggered-restart`)
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)

const cluster = await Cluster.start(dir, { log })
let code = 0
try {
  const self = await cluster.agents[0]!.get<SelfView>('/v1/agent/self')
  const members = await cluster.agents[0]!.get<(MemberView & { id: string })[]>('/v1/members')
  const voters = self.raft.voters.map((id) => cluster.byName(members.find((m) => m.id === id)!.name))
  log(`voters: ${voters.map((v) => v.name).join(', ')}; killing all of them (kill -9)`)
  await Promise.all(voters.map((v) => v.kill('SIGKILL')))
  await sleep(2_000)
  for (const v of voters) {
    log(`restarting ${v.name} alone`)
    v.spawn()
    await sleep(gap * 1000)
    log(`  ${v.name} after ${gap}s: ${v.alive ? 'running' : `exited with code ${v.proc!.exitCode}`}`)
  }
  const down = voters.filter((v) => !v.alive)
  log(`${down.length}/${voters.length} voters exited on their own after a staggered restart: ${down.map((v) => v.name).join(', ') || 'none'}`)
  const leader = await cluster.leader()
  log(`leader now: ${leader?.name ?? 'none'}`)
  if (down.length > 0) {
    code = 1
    log('restarting the exited voters together…')
    for (const v of down) v.spawn()
  }
  try {
    await cluster.waitHealthy(90_000)
    log(`recovered: leader ${(await cluster.leader())?.name}`)
  } catch (err) {
    code = 1
    log(`did not recover: ${(err as Error).message}`)
  }
} finally {
  await cluster.stop()
}
log(`logs in ${join(dir, 'logs')}`)
process.exitCode = code
