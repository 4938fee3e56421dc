// Runtime benchmark (issue #6): time from "start N copies of busybox httpd, each with a
// published port" to all N running, for Shoal (`shoal job run`), Docker Swarm
// (`docker service create --replicas N`) and raw `docker run -d` × N (sequential, as a
// script would, and parallel), side by side in one run on the same engine and image.
// `npm run bench:runtime [-- --ns 1,20,50 --trials 3 --only shoal,swarm,docker,docker-par --profile DIR]`
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Docker from 'dockerode'
import { freePort, SHOAL } from '../test/harness/agent.ts'
import { cleanUpOnExit, sleep, trackDir, untrackDir, waitFor } from './lib/cluster.ts'
import { benchCli, parseBenchFlags } from './lib/flags.ts'
import { json, keepAliveAgent, request } from './lib/http.ts'
import { Proc, tail } from './lib/proc.ts'
import { median } from './lib/report.ts'

const USAGE = `usage: npm run bench:runtime -- [--ns 1,20,50] [--trials N] [--only LIST] [--profile DIR] [--host IP]
  --ns LIST      allocation counts (default 1,20,50)
  --trials N     runs per system and count (default 3); the systems take turns within a trial
  --only LIST    comma-separated subset of shoal,shoal-api,swarm,docker,docker-par
                 (shoal-api: POST /v1/jobs without the CLI, to separate the CLI's start-up)
  --profile DIR  run the Shoal agent with --cpu-prof; the profile lands in DIR when it stops
  --host IP      loopback address of the agent and of raw docker's published ports (default 127.0.5.1)`

const ALL_SYSTEMS = ['shoal', 'shoal-api', 'swarm', 'docker', 'docker-par'] as const
type System = (typeof ALL_SYSTEMS)[number]

const { die, count } = benchCli('bench:runtime', USAGE)
const flags = parseBenchFlags('bench:runtime', USAGE, {
  ns: { type: 'string', default: '1,20,50' },
  trials: { type: 'string', default: '3' },
  only: { type: 'string' },
  profile: { type: 'string' },
  host: { type: 'string', default: '127.0.5.1' },
})
const ns = flags.ns.split(',').map((s) => Number(s.trim()))
if (ns.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) die(`--ns: expected whole numbers 1..200, got "${flags.ns}"`)
const trials = count('trials', flags.trials, 1)
const systems: System[] = flags.only ? flags.only.split(',').map((s) => s.trim() as System) : [...ALL_SYSTEMS]
for (const s of systems) if (!ALL_SYSTEMS.includes(s)) die(`--only: unknown system "${s}" (one of ${ALL_SYSTEMS.join(', ')})`)
const HOST = flags.host
if (!/^127\.\d+\.\d+\.\d+$/.test(HOST)) die(`--host: expected a loopback IPv4 address, got "${HOST}"`)

const IMAGE = process.env.SHOAL_TEST_IMAGE ?? 'shoal-test/busybox:latest'
const CMD = ['/bin/httpd', '-f', '-p', '80', '-h', '/www']
const LABEL = 'shoal-bench-runtime'
const SWARM_SERVICE = 'shoal-bench-runtime'
const JOB = 'bench-runtime'
const docker = new Docker({ socketPath: '/var/run/docker.sock' })
const http = keepAliveAgent(4)
const run = promisify(execFile)
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`)

interface Sample {
  system: System
  n: number
  trial: number
  /** Seconds from the start of the command to all N running. */
  seconds: number
  /** Shoal: when `shoal job run` exited (it returns once it has seen every allocation running). */
  cliSeconds?: number
  /** 1-minute load average when the sample started. */
  load: number
}

// ---------------------------------------------------------------- Shoal

let agent: Proc | undefined
let agentUrl = ''
let dataDir = ''

async function startAgent(): Promise<void> {
  dataDir = await mkdtemp(join(os.tmpdir(), 'shoal-bench-runtime-'))
  trackDir(dataDir)
  const port = await freePort(HOST)
  agentUrl = `http://${HOST}:${port}`
  const env = flags.profile ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${resolve(flags.profile)}`.trim() } : {}
  agent = new Proc('agent', SHOAL, ['agent', '--dev', '--data-dir', dataDir, '--name', 'bench-runtime', '--http', `${HOST}:${port}`, '--bind', HOST], env)
  await waitFor('the Shoal agent to be ready', async () => {
    if (!agent!.running) throw new Error(`agent exited:\n${tail(agent!)}`)
    const nodes = await json<{ name: string; status: string }[]>(http, 'GET', `${agentUrl}/v1/nodes`)
    return nodes.some((n) => n.status === 'ready') ? true : undefined
  }, 60_000)
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

function jobFile(n: number): object {
  return {
    job: {
      [JOB]: {
        type: 'service',
        group: {
          web: {
            count: n,
            network: { port: { http: { to: 80 } } },
            task: {
              httpd: {
                driver: 'docker',
                config: { image: IMAGE, command: CMD[0], args: CMD.slice(1), ports: ['http'] },
                resources: { cpu: 20, memory: 16 },
              },
            },
          },
        },
      },
    },
  }
}

interface AllocStub { jobId: string; clientStatus: string; desiredStatus: string }

async function allocsOfJob(index?: number): Promise<{ allocs: AllocStub[]; index: number }> {
  const q = index === undefined ? '' : `?index=${index}&wait=10s`
  const res = await requestWithIndex(`${agentUrl}/v1/allocations${q}`)
  return { allocs: (JSON.parse(res.body) as AllocStub[]).filter((a) => a.jobId === JOB), index: res.index }
}

async function requestWithIndex(url: string): Promise<{ body: string; index: number }> {
  // bench/lib/http's request() does not return headers: read the index from a plain request.
  const res = await fetch(url)
  const body = await res.text()
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 200)}`)
  return { body, index: Number(res.headers.get('x-shoal-index') ?? 0) }
}

async function shoalTrial(n: number, viaCli: boolean): Promise<{ seconds: number; cliSeconds?: number }> {
  const dir = await mkdtemp(join(os.tmpdir(), 'shoal-bench-job-'))
  const file = join(dir, 'job.json')
  await writeFile(file, JSON.stringify(jobFile(n)))
  let { index } = await allocsOfJob()
  const t0 = performance.now()
  const cli = !viaCli
    ? json(http, 'POST', `${agentUrl}/v1/jobs`, jobFile(n), 10_000).then(() => undefined)
    : new Promise<number>((resolvePromise, reject) => {
      const p = spawn(SHOAL, ['job', 'run', file, '--address', agentUrl], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.on('data', (d: Buffer) => (out += d))
      p.stderr.on('data', (d: Buffer) => (out += d))
      p.on('close', (code) => (code === 0 ? resolvePromise(performance.now()) : reject(new Error(`shoal job run exited ${code}:\n${out}`))))
    })
  // Watch the state with blocking queries: the moment every allocation reports running.
  let runningAt: number | undefined
  const deadline = Date.now() + 120_000
  while (runningAt === undefined && Date.now() < deadline) {
    const r = await allocsOfJob(index)
    index = r.index
    const live = r.allocs.filter((a) => a.desiredStatus === 'run')
    if (live.length === n && live.every((a) => a.clientStatus === 'running')) runningAt = performance.now()
    else if (live.some((a) => a.clientStatus === 'failed')) throw new Error('an allocation failed')
  }
  const cliAt = await cli
  await rm(dir, { recursive: true, force: true })
  if (runningAt === undefined) throw new Error(`not all ${n} allocations running within 120 s`)
  return { seconds: (runningAt - t0) / 1000, ...(cliAt !== undefined ? { cliSeconds: (cliAt - t0) / 1000 } : {}) }
}

async function shoalCleanup(): Promise<void> {
  await request(http, 'DELETE', `${agentUrl}/v1/job/${JOB}?purge=true`).catch(() => undefined)
  await waitFor('the benchmark job\'s containers to be removed', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`shoal.job=${JOB}`] } })
    return list.length === 0 ? true : undefined
  }, 120_000, 200)
}

// ---------------------------------------------------------------- Docker

let swarmInitialized = false
let gwbridgeExisted = true

async function swarmSetup(): Promise<void> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } }
  if (info.Swarm?.LocalNodeState === 'active') return
  gwbridgeExisted = (await docker.listNetworks({ filters: { name: ['docker_gwbridge'] } })).some((n) => n.Name === 'docker_gwbridge')
  log('swarm: docker swarm init --advertise-addr 127.0.0.1 (left again at the end)')
  await run('docker', ['swarm', 'init', '--advertise-addr', '127.0.0.1'])
  swarmInitialized = true
}

async function swarmTeardown(): Promise<void> {
  await run('docker', ['service', 'rm', SWARM_SERVICE]).catch(() => undefined)
  if (!swarmInitialized) return
  swarmInitialized = false
  await run('docker', ['swarm', 'leave', '--force']).catch((err: Error) => log(`swarm leave: ${err.message}`))
  if (!gwbridgeExisted) await run('docker', ['network', 'rm', 'docker_gwbridge']).catch(() => undefined)
  log('swarm: left (engine back to its previous state)')
}

async function swarmTrial(n: number): Promise<number> {
  const t0 = performance.now()
  await run('docker', ['service', 'create', '--detach', '--no-resolve-image', '--quiet', '--name', SWARM_SERVICE, '--replicas', String(n),
    '--publish', 'mode=host,target=80', IMAGE, ...CMD])
  // What `docker service ps` shows, from the same API, polled every 50 ms.
  await waitFor(`${n} swarm tasks running`, async () => {
    const tasks = (await docker.listTasks({ filters: { service: [SWARM_SERVICE], 'desired-state': ['running'] } })) as { Status?: { State?: string } }[]
    return tasks.filter((t) => t.Status?.State === 'running').length >= n ? true : undefined
  }, 120_000, 50)
  return (performance.now() - t0) / 1000
}

async function swarmCleanup(): Promise<void> {
  await run('docker', ['service', 'rm', SWARM_SERVICE]).catch(() => undefined)
  await waitFor('the swarm service\'s containers to be removed', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${SWARM_SERVICE}`] } })
    return list.length === 0 ? true : undefined
  }, 120_000, 200)
}

async function dockerTrial(n: number, parallel: boolean): Promise<number> {
  const one = `docker run -d --label ${LABEL}=1 --name ${LABEL}-$i -p ${HOST}::80 ${IMAGE} ${CMD.join(' ')} >/dev/null`
  const script = parallel
    ? `for i in $(seq 1 ${n}); do ${one} & done; fail=0; for j in $(jobs -p); do wait $j || fail=1; done; exit $fail`
    : `set -e; for i in $(seq 1 ${n}); do ${one}; done`
  const t0 = performance.now()
  await run('bash', ['-c', script])
  return (performance.now() - t0) / 1000
}

async function dockerCleanup(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=1`] } })
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)))
}

// ---------------------------------------------------------------- run

const cleanups: Record<System, () => Promise<void>> = {
  shoal: shoalCleanup, 'shoal-api': shoalCleanup, swarm: swarmCleanup, docker: dockerCleanup, 'docker-par': dockerCleanup,
}

async function trial(system: System, n: number): Promise<Pick<Sample, 'seconds' | 'cliSeconds'>> {
  switch (system) {
    case 'shoal': return shoalTrial(n, true)
    case 'shoal-api': return shoalTrial(n, false)
    case 'swarm': return { seconds: await swarmTrial(n) }
    case 'docker': return { seconds: await dockerTrial(n, false) }
    case 'docker-par': return { seconds: await dockerTrial(n, true) }
  }
}

async function teardown(): Promise<void> {
  await dockerCleanup().catch(() => undefined)
  if (systems.includes('swarm')) await swarmTeardown().catch(() => undefined)
  if (agent?.running) {
    await request(http, 'DELETE', `${agentUrl}/v1/job/${JOB}?purge=true`).catch(() => undefined)
    await shoalCleanup().catch(() => undefined)
    // SIGINT lets node write the --cpu-prof profile.
    await Promise.race([agent.signal('SIGINT'), sleep(15_000)])
    await agent.signal('SIGKILL')
  }
  if (dataDir) {
    await rm(dataDir, { recursive: true, force: true, maxRetries: 5 })
    untrackDir(dataDir)
  }
}

cleanUpOnExit(teardown, log)

const fmt = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? '-' : v.toFixed(d))

function report(samples: Sample[], rss: { idle: number; idleAfter: number } | undefined, started: Date, loads: number[]): string {
  const lines: string[] = []
  const med = (s: System, n: number, key: 'seconds' | 'cliSeconds' = 'seconds') =>
    median(samples.filter((x) => x.system === s && x.n === n && x[key] !== undefined).map((x) => x[key]!))
  const min = (s: System, n: number) => {
    const xs = samples.filter((x) => x.system === s && x.n === n).map((x) => x.seconds)
    return xs.length ? Math.min(...xs) : null
  }
  lines.push(`Runtime benchmark — ${started.toISOString()}, ${trials} trial(s) per cell, median (min) seconds to all N running`)
  lines.push(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), 1-min load avg during the run ${fmt(Math.min(...loads), 1)}…${fmt(Math.max(...loads), 1)} (shared with other work)`)
  lines.push(`image ${IMAGE}, ${CMD.join(' ')}, one published port each`)
  lines.push('shoal running: from spawning `shoal job run` until the state says all N run (blocking reads); job run exit: it then follows the deployment (min_healthy_time 10 s)')
  lines.push('')
  const cols = ['N', 'shoal running', 'job run exit', 'shoal via API', 'swarm', 'docker run seq', 'docker run par', 'shoal/seq', 'shoal/swarm']
  lines.push(cols.map((c, i) => (i === 0 ? c.padStart(3) : c.padStart(15))).join(' '))
  for (const n of ns) {
    const cell = (s: System) => (systems.includes(s) ? `${fmt(med(s, n))} (${fmt(min(s, n))})` : '-')
    const sh = med('shoal', n)
    const seq = med('docker', n)
    const sw = med('swarm', n)
    const row = [String(n).padStart(3), cell('shoal'), systems.includes('shoal') ? fmt(med('shoal', n, 'cliSeconds')) : '-', cell('shoal-api'), cell('swarm'), cell('docker'), cell('docker-par'),
      sh !== null && seq ? `${fmt(sh / seq)}×` : '-', sh !== null && sw ? `${fmt(sh / sw)}×` : '-']
    lines.push(row.map((c, i) => (i === 0 ? c : c.padStart(15))).join(' '))
  }
  lines.push('')
  lines.push('targets (informational)')
  for (const n of ns) {
    const sh = med('shoal', n)
    const seq = med('docker', n)
    const sw = med('swarm', n)
    if (sh === null) continue
    if (seq !== null) lines.push(`  ${sh <= 1.1 * seq ? 'PASS' : 'MISS'}  N=${n}: shoal ≤ 1.1× raw docker run (sequential)   ${fmt(sh / seq)}×`)
    if (sw !== null) lines.push(`  ${sh < sw ? 'PASS' : 'MISS'}  N=${n}: shoal ahead of swarm                     ${fmt(sh)} vs ${fmt(sw)} s`)
    if (n === 1) {
      // The target is time to running; `job run` itself returns later, once the deployment is healthy (min_healthy_time).
      lines.push(`  ${sh <= 0.5 ? 'PASS' : 'MISS'}  N=1: shoal ≤ 0.5 s (state says running)           ${fmt(sh)} s`)
    }
  }
  if (rss) {
    lines.push(`  ${Math.max(rss.idle, rss.idleAfter) <= 100 ? 'PASS' : 'MISS'}  idle agent RSS ≤ 100 MB                        ${fmt(rss.idle, 0)} MiB at start, ${fmt(rss.idleAfter, 0)} MiB idle after the runs`)
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const started = new Date()
  const root = fileURLToPath(new URL('..', import.meta.url))
  log(`runtime benchmark: N = ${ns.join(', ')}, ${trials} trial(s), systems ${systems.join(', ')}; ${os.cpus().length} cores, load avg ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  await docker.getImage(IMAGE).inspect().catch(() => die(`image ${IMAGE} missing: run "bash scripts/setup-docker.sh"`))
  if (flags.profile) await mkdir(resolve(flags.profile), { recursive: true })
  await dockerCleanup()
  let rss: { idle: number; idleAfter: number } | undefined
  if (systems.includes('shoal') || systems.includes('shoal-api')) {
    await startAgent()
    log(`shoal: agent ready at ${agentUrl}; measuring idle RSS after 10 s`)
    await sleep(10_000)
    rss = { idle: rssMiB(agent!.child.pid!), idleAfter: NaN }
    log(`shoal: idle RSS ${rss.idle.toFixed(0)} MiB`)
  }
  if (systems.includes('swarm')) await swarmSetup()
  const samples: Sample[] = []
  const loads: number[] = []
  for (const n of ns) {
    for (let t = 1; t <= trials; t++) {
      // Rotate the order so no system always runs right after another's cleanup.
      const order = systems.map((_, i) => systems[(i + t - 1) % systems.length]!)
      for (const system of order) {
        await sleep(1000)
        const load = os.loadavg()[0]!
        loads.push(load)
        const r = await trial(system, n)
        samples.push({ system, n, trial: t, load, ...r })
        log(`${system.padEnd(10)} N=${String(n).padStart(3)} trial ${t}: ${r.seconds.toFixed(2)} s${r.cliSeconds !== undefined ? ` (CLI returned at ${r.cliSeconds.toFixed(2)} s)` : ''}, load ${load.toFixed(2)}`)
        await cleanups[system]()
      }
    }
  }
  if (rss && agent) {
    await sleep(10_000)
    rss.idleAfter = rssMiB(agent.child.pid!)
  }
  await teardown()
  const text = report(samples, rss, started, loads)
  console.log(`\n${text}`)
  if (flags.profile) {
    const profiles = existsSync(resolve(flags.profile)) ? (await readdir(resolve(flags.profile))).filter((f) => f.endsWith('.cpuprofile')) : []
    console.log(`\nprofiles in ${resolve(flags.profile)}: ${profiles.join(', ') || 'none'}`)
  }
  const dir = join(root, 'bench/results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `runtime-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({ date: started.toISOString(), machine: { cpus: os.cpus().length, node: process.version }, ns, trials, systems, samples, rss }, null, 2) + '\n')
  console.log(`\nresults: ${file}`)
}

main().then(() => process.exit(0), (err: Error) => {
  log(`failed: ${err.stack ?? err.message}`)
  void teardown().finally(() => process.exit(1))
})
