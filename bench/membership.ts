// Failure detection and self-healing of real `shoal agent` processes, side by
// side with published anchors (Nomad marks a node down after 20-30 s by
// default, Docker Swarm after ~15 s).
//
//   node bench/membership.ts [--trials 5] [--soak SECONDS] [--burners N]
//
// 5 agents on 127.0.0.141-145, --voters 3. Per trial: kill -9 (or SIGSTOP)
// one non-leader agent; every survivor's /v1/members is polled every 25 ms;
// the time until each survivor shows it dead is recorded; the agent is
// brought back (restart / SIGCONT) and the cluster left to settle. Voter
// loss: kill -9 a voter, time until 3 alive voters again with a write that
// succeeds. Soak: N CPU burners saturate the cores for SECONDS while nothing
// is killed: any member seen dead is a false death.
import { spawn, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { AgentProcess, eventually, freePort, tempDir } from '../test/harness/agent.ts'

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '5' },
    soak: { type: 'string', default: '60' },
    burners: { type: 'string', default: String(availableParallelism()) },
  },
})
const TRIALS = Number(values.trials)
const SOAK_S = Number(values.soak)
const BURNERS = Number(values.burners)

interface MemberView { name: string; status: string; role: string }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`)

const dir = await tempDir('bench-membership')
const hosts = ['127.0.0.141', '127.0.0.142', '127.0.0.143', '127.0.0.144', '127.0.0.145']
const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
const agents: AgentProcess[] = []
const burners: ChildProcess[] = []
const cleanup = () => {
  for (const b of burners) b.kill('SIGKILL')
  for (const a of agents) a.proc.kill('SIGKILL')
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

try {
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({ dataDir: join(dir, `m${i + 1}`), name: `m${i + 1}`, bind, httpPort: await freePort(), dev: false, ...(i > 0 ? { join: [binds[0]!] } : {}) }))
  }
  const members = (a: AgentProcess) => a.get<MemberView[]>('/v1/members')
  const settled = async () => {
    await eventually(async () => {
      for (const a of agents) if ((await members(a)).some((m) => m.status !== 'alive')) return false
      return (await members(agents[0]!)).filter((m) => m.role === 'leader' || m.role === 'voter').length === 3
    }, { what: 'all 5 alive, 3 voters', timeoutMs: 60_000 })
  }
  await settled()
  log('5 agents up, 3 voters')

  /** ms until every survivor shows `victim` dead, per survivor. */
  const detection = async (victim: AgentProcess, survivors: AgentProcess[], started: number): Promise<number[]> => {
    const seen = new Map<AgentProcess, number>()
    while (seen.size < survivors.length && Date.now() - started < 30_000) {
      await Promise.all(survivors.filter((s) => !seen.has(s)).map(async (s) => {
        const m = (await members(s).catch(() => [])).find((x) => x.name === victim.options.name)
        if (m?.status === 'dead') seen.set(s, Date.now() - started)
      }))
      await sleep(25)
    }
    return survivors.map((s) => seen.get(s) ?? NaN)
  }
  const pickFollower = async () => {
    const view = await members(agents[0]!)
    const name = view.find((m) => m.role !== 'leader' && m.name !== 'm1')!.name
    return agents.find((a) => a.options.name === name)!
  }

  const killTimes: number[] = []
  for (let trial = 1; trial <= TRIALS; trial++) {
    const victim = await pickFollower()
    const survivors = agents.filter((a) => a !== victim)
    const started = Date.now()
    await victim.kill('SIGKILL')
    const times = await detection(victim, survivors, started)
    killTimes.push(median(times))
    log(`kill -9 ${victim.options.name}: dead on every survivor after ${times.map((x) => x.toFixed(0)).join(', ')} ms`)
    agents[agents.indexOf(victim)] = await AgentProcess.start(victim.options)
    await settled()
  }

  const stopTimes: number[] = []
  for (let trial = 1; trial <= TRIALS; trial++) {
    const victim = await pickFollower()
    const survivors = agents.filter((a) => a !== victim)
    const started = Date.now()
    victim.proc.kill('SIGSTOP')
    const times = await detection(victim, survivors, started)
    stopTimes.push(median(times))
    log(`SIGSTOP ${victim.options.name}: dead on every survivor after ${times.map((x) => x.toFixed(0)).join(', ')} ms`)
    victim.proc.kill('SIGCONT')
    await settled()
  }

  const healTimes: number[] = []
  for (let trial = 1; trial <= Math.min(TRIALS, 3); trial++) {
    const view = await members(agents[0]!)
    const name = view.find((m) => m.role === 'voter' && m.name !== 'm1')?.name
    if (!name) break
    const victim = agents.find((a) => a.options.name === name)!
    const observer = agents.find((a) => a !== victim)!
    const started = Date.now()
    await victim.kill('SIGKILL')
    await eventually(async () => {
      const v = (await members(observer)).filter((m) => m.status === 'alive' && (m.role === 'leader' || m.role === 'voter'))
      if (v.length !== 3 || v.some((m) => m.name === name)) return false
      const res = await fetch(`${observer.address}/v1/var/bench/heal`, { method: 'PUT', body: JSON.stringify({ value: String(trial) }) })
      return res.ok
    }, { what: 'voters healed', timeoutMs: 60_000, intervalMs: 25 })
    healTimes.push(Date.now() - started)
    log(`voter ${name} killed: 3 healthy voters and a write after ${Date.now() - started} ms`)
    agents[agents.indexOf(victim)] = await AgentProcess.start(victim.options)
    await settled()
  }

  let falseDeaths = 0
  let suspicions = 0
  if (SOAK_S > 0) {
    log(`soak: ${BURNERS} CPU burner(s) for ${SOAK_S} s, nothing killed`)
    for (let i = 0; i < BURNERS; i++) burners.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))
    const seenDead = new Set<string>()
    const seenSuspect = new Set<string>()
    const end = Date.now() + SOAK_S * 1000
    while (Date.now() < end) {
      for (const a of agents) {
        for (const m of await members(a).catch(() => [])) {
          if (m.status === 'dead') seenDead.add(`${a.options.name}→${m.name}`)
          if (m.status === 'suspect') seenSuspect.add(`${a.options.name}→${m.name}@${Math.floor(Date.now() / 5000)}`)
        }
      }
      await sleep(200)
    }
    for (const b of burners) b.kill('SIGKILL')
    falseDeaths = seenDead.size
    suspicions = seenSuspect.size
  }

  const f = (x: number) => (Number.isNaN(x) ? '-' : `${(x / 1000).toFixed(2)} s`)
  console.log(`
Failure detection, 5 agents on loopback (2-core machine), ${TRIALS} trials each
                                  shoal median      anchors
  kill -9 → dead on survivors        ${f(median(killTimes)).padEnd(15)}   Nomad 20-30 s (heartbeat TTL), Swarm ~15 s
  SIGSTOP → dead on survivors        ${f(median(stopTimes)).padEnd(15)}
  voter loss → 3 voters + a write    ${f(median(healTimes)).padEnd(15)}
  soak ${SOAK_S} s, ${BURNERS} burner(s): false deaths ${falseDeaths}, suspicions ${suspicions}
targets (informational)
  ${median(killTimes) <= 2000 ? 'PASS' : 'MISS'}  kill -9 median ≤ 2 s
  ${median(stopTimes) <= 3000 ? 'PASS' : 'MISS'}  SIGSTOP median ≤ 3 s
  ${median(healTimes) <= 10_000 ? 'PASS' : 'MISS'}  voters healed ≤ 10 s
  ${falseDeaths === 0 ? 'PASS' : 'MISS'}  0 false deaths under CPU saturation (target run: 600 s)`)
} finally {
  cleanup()
  await rm(dir, { recursive: true, force: true })
}
