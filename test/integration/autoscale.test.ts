// Autoscaling on real agents and real containers: a CPU-bound busybox httpd
// (a CGI script that burns CPU per request) under load from autocannon scales
// up to its max and never beyond; once the load stops it scales back down
// after the cooldown, one step at a time, never below min. Manual `job scale`
// moves the count within the bounds and is refused outside them;
// `scaling.enabled: false` pauses the autoscaler. Decisions show in `job status`
// and on the event stream. A service published through the mesh scales on its
// requests per second.
import test from 'ava'
import { createRequire } from 'node:module'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'
import type { ScalingEvent } from '../../src/structs/index.ts'

// autocannon ships no types; only its promise form is used here.
type Autocannon = (o: { url: string; connections: number; duration: number }) => Promise<{ '2xx': number }>
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

interface AllocStub { id: string; nodeName: string; desiredStatus: string; clientStatus: string; ports: { label: string; value: number; hostIp: string }[] }
interface Status {
  version: number
  job: { groups: { name: string; count: number }[] }
  allocations: AllocStub[]
  scaling: Record<string, { count: number; policy: { min: number; max: number; enabled: boolean } | null; events: ScalingEvent[] }>
}

/** Each request runs a shell loop of 20000 iterations (~50 ms of one core); a length so clients see where the answer ends. */
const BURN_CGI = '#!/bin/sh\ni=0\nwhile [ $i -lt 20000 ]; do i=$((i+1)); done\nprintf "Content-Type: text/plain\\r\\nContent-Length: 12\\r\\n\\r\\nburnt %s\\n" $i\n'
const COOLDOWN_MS = 6_000

const jobFile = (enabled: boolean, count = 1) => JSON.stringify({ job: { burn: { group: { web: {
  count,
  network: { port: { http: { to: 80 } } },
  scaling: { min: 1, max: 3, enabled, cooldown: `${COOLDOWN_MS / 1000}s`, evaluation_interval: '2s', scale_in_step: 1, policy: { cpu_percent: 60 } },
  task: { httpd: {
    driver: 'docker',
    config: {
      image: TEST_IMAGE, command: '/bin/sh', ports: ['http'],
      args: ['-c', `mkdir -p /www/cgi-bin && echo ${Buffer.from(BURN_CGI).toString('base64')} | base64 -d > /www/cgi-bin/burn && chmod +x /www/cgi-bin/burn && exec httpd -f -p 80 -h /www`],
    },
    resources: { cpu: 100, memory: 64 },
    kill_timeout: '1s',
  } },
} } } } })

test.serial('a CPU-bound service scales up under load within max, and back down to min after the cooldown', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('autoscale')
  const hosts = ['127.0.7.1', '127.0.7.2']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const agents: AgentProcess[] = []
  let loading = false
  let watching = true
  t.teardown(async () => {
    loading = false
    watching = false
    if (agents[0]) await runCli(['job', 'stop', 'burn', '--purge', '--detach'], agents[0].address, 30_000).catch(() => undefined)
    const ids = await Promise.all(agents.map((a) => a.get<{ nodeId: string }>('/v1/agent/self').then((s) => s.nodeId).catch(() => '')))
    for (const a of agents) await a.kill()
    for (const id of ids.filter(Boolean)) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${id}`] } })) {
        await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
      }
    }
    await rm(dir, { recursive: true, force: true })
  })
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({
      dataDir: join(dir, `n${i + 1}`), name: `as${i + 1}`, bind, httpPort: await freePort(), dev: false, ...(i > 0 ? { join: [binds[0]!] } : {}),
    }))
  }
  const [a1, a2] = agents as [AgentProcess, AgentProcess]
  await eventually(async () => (await a2.get<{ status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 2, { what: 'both nodes ready' })
  const status = () => a2.get<Status>('/v1/job/burn')
  const count = async () => (await status()).job.groups[0]!.count
  const running = async () => (await status()).allocations.filter((a) => a.desiredStatus === 'run' && a.clientStatus === 'running')

  // Decisions as they happen, from a follower's event stream.
  const streamed: { topic: string; type: string; key: string; payload: { jobId: string; group: string; event: ScalingEvent } }[] = []
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const stream = await fetch(`${a2.address}/v1/event/stream?topic=scaling:burn`, { signal: abort.signal })
  t.is(stream.status, 200)
  void (async () => {
    let buf = ''
    for await (const chunk of stream.body!) {
      buf += Buffer.from(chunk).toString()
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        const e = JSON.parse(line) as (typeof streamed)[number]
        if (e.topic) streamed.push(e)
      }
    }
  })().catch(() => undefined)

  const file = join(dir, 'burn.json')
  await writeFile(file, jobFile(true))
  const run = await runCli(['job', 'run', file], a1.address)
  t.is(run.code, 0, run.stdout + run.stderr)

  // Every count the job ever had while the test watched.
  const seen = new Set<number>()
  const watcher = (async () => {
    while (watching) {
      seen.add(await count().catch(() => 1))
      await new Promise((r) => setTimeout(r, 300))
    }
  })()

  // Idle: the autoscaler measures and finds one instance enough (at min).
  const idle = await eventually(async () => {
    const events = (await status()).scaling.web?.events ?? []
    return events.find((e) => e.source === 'autoscaler' && e.measurement) ?? false
  }, { what: 'a first autoscaler decision', timeoutMs: 30_000 })
  t.like(idle, { from: 1, to: 1 })
  t.regex(idle.message, /^cpu [\d.]+% of target 60% over 1 allocation: (1 is enough|wants 0, already at min 1)$/)

  // Load on every running instance, refreshed as instances come and go.
  loading = true
  let requests = 0
  const load = (async () => {
    while (loading) {
      const targets = (await running().catch(() => [])).flatMap((a) => a.ports.filter((p) => p.label === 'http').map((p) => `http://${p.hostIp}:${p.value}/cgi-bin/burn`))
      if (targets.length === 0) {
        await new Promise((r) => setTimeout(r, 200))
        continue
      }
      const results = await Promise.all(targets.map((url) => autocannon({ url, connections: 4, duration: 2 })))
      for (const r of results) requests += r['2xx']
    }
  })()

  await eventually(async () => (await running()).length === 3 && (await count()) === 3, { what: 'scaled up to 3 running instances', timeoutMs: 90_000 })
  const up = (await status()).scaling.web!.events.filter((e) => e.reason === 'scaled' && e.to > e.from)
  t.true(up.length >= 1)
  for (const e of up) {
    t.is(e.source, 'autoscaler')
    t.true(e.measurement!.value > 60, JSON.stringify(e))
    t.regex(e.message, /^cpu [\d.]+% of target 60% over \d allocations?: \d → [23]/)
  }
  // Still loaded and at max: no decision goes beyond it.
  const atMax = await eventually(async () => (await status()).scaling.web!.events.find((e) => e.reason === 'at-bounds' && e.to === 3), { what: 'an at-max decision', timeoutMs: 30_000 })
  t.regex(atMax.message, /already at max 3/)
  loading = false
  await load
  t.true(requests > 20, `load: ${requests} requests answered`)
  const loadEnded = Date.now()

  // Idle again: after the cooldown it steps down one at a time to min and stays there.
  await eventually(async () => (await count()) === 1, { what: 'scaled back down to 1', timeoutMs: 90_000 })
  const detail = await status()
  const events = detail.scaling.web!.events
  const changes = events.filter((e) => e.reason === 'scaled')
  // Under load the measured CPU wobbles around the target, so a step back and forth may happen then;
  // once the load is gone it is two single steps down.
  const lastUp = changes.filter((e) => e.to > e.from).at(-1)!
  const downs = changes.filter((e) => e.time > lastUp.time)
  t.deepEqual(downs.map((e) => [e.from, e.to]), [[3, 2], [2, 1]], 'scale_in_step 1: one at a time')
  for (const e of changes.filter((x) => x.to < x.from)) t.is(e.from - e.to, 1, 'never more than scale_in_step')
  for (let i = 1; i < changes.length; i++) t.true(changes[i]!.time >= changes[i - 1]!.time + COOLDOWN_MS, 'no change within the cooldown of the previous one')
  t.true(downs[1]!.time >= loadEnded, 'the last step down came after the load ended')
  for (const e of events) t.true(e.to >= 1 && e.to <= 3, JSON.stringify(e))
  t.true(events.filter((e) => e.reason === 'scaled').every((e) => e.jobVersion !== undefined), 'each change is a job version')
  t.is(detail.version, events.filter((e) => e.reason === "scaled").length, "one job version per change (from version 0)")

  // The event stream carried the same decisions.
  const streamedEvents = streamed.filter((e) => e.type === 'ScalingEvent' && e.key === 'burn' && e.payload.group === 'web').map((e) => e.payload.event)
  for (const e of events) t.true(streamedEvents.some((s) => s.time === e.time && s.message === e.message), `streamed: ${e.message}`)

  // The CLI shows the decisions; --json carries them.
  const human = await runCli(['job', 'status', 'burn'], a1.address)
  t.is(human.code, 0, human.stderr)
  t.regex(human.stdout, /Scaling\nGroup +Count +Min +Max +Autoscaling +Policy\nweb +1 +1 +3 +enabled +cpu 60%, every 2s, cooldown 6s, steps in ≤1/)
  t.regex(human.stdout, /Scaling Events\nTime +Group +Count +Source +Decision\n[^]*web +2 → 1 +autoscaler +cpu [\d.]+% of target 60% over 2 allocations: 2 → 1( \(wants 0; limited to min 1\))?\n/)
  t.regex(human.stdout, /web +3 → 2 +autoscaler +cpu [\d.]+% of target 60% over 3 allocations: 3 → 2( \(wants [01]; (limited to min 1, )?scale_in_step 1\))?\n/)
  const json = JSON.parse((await runCli(['job', 'status', 'burn', '--json'], a1.address)).stdout) as Status
  t.deepEqual(json.scaling.web!.events.slice(0, events.length), events, 'the same history (maybe one decision later)')

  // Manual scale: refused outside the bounds, naming them; within them it moves the count.
  const refused = await runCli(['job', 'scale', 'burn', 'web', '4'], a1.address)
  t.is(refused.code, 1)
  t.regex(refused.stderr, /count: 4 is outside the scaling bounds of group "web" \(min 1, max 3\)/)
  const zero = await runCli(['job', 'scale', 'burn', 'web', '0'], a1.address)
  t.regex(zero.stderr, /count: 0 is outside the scaling bounds of group "web" \(min 1, max 3\)/)
  t.is(await count(), 1)

  // Paused: a manual count stays although the group is idle.
  await writeFile(file, jobFile(false))
  t.is((await runCli(['job', 'run', file, '--detach'], a1.address)).code, 0)
  const manual = await runCli(['job', 'scale', 'burn', 'web', '2', '--message', 'more for the demo'], a2.address)
  t.is(manual.code, 0, manual.stdout + manual.stderr)
  const paused = await eventually(async () => (await status()).scaling.web!.events.find((e) => e.reason === 'disabled'), { what: 'a paused decision', timeoutMs: 20_000 })
  t.regex(paused.message, /paused/)
  await new Promise((r) => setTimeout(r, COOLDOWN_MS + 4_000))
  t.is(await count(), 2, 'paused: no scale-in although idle past the cooldown')
  const last = (await status()).scaling.web!.events.filter((e) => e.source === 'manual').at(-1)!
  t.like(last, { from: 1, to: 2, reason: 'manual', message: 'more for the demo' })

  watching = false
  await watcher
  t.deepEqual([...seen].sort(), [1, 2, 3], 'never above max 3 nor below min 1')
})

test.serial('requests per second through the mesh scale a service out and, once quiet, back in', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('autoscale-rps')
  const host = '127.0.7.10'
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'as-rps', bind: host, httpPort: await freePort() })
  const nodeId = (await agent.get<{ nodeId: string }>('/v1/agent/self')).nodeId
  let loading = false
  t.teardown(async () => {
    loading = false
    await runCli(['job', 'stop', 'rps', '--purge', '--detach'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const published = await freePort(host)
  const file = join(dir, 'rps.json')
  await writeFile(file, JSON.stringify({ job: { rps: { group: { web: {
    count: 1,
    network: { port: { http: { to: 80 } } },
    service: [{ name: 'rps', port: 'http', publish: { port: published } }],
    scaling: { min: 1, max: 3, cooldown: '4s', evaluation_interval: '2s', scale_in_step: 2, policy: { requests_per_second: 20 } },
    task: { httpd: {
      driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
      config: { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '80', '-h', '/www'], ports: ['http'] },
    } },
  } } } } }))
  const run = await runCli(['job', 'run', file], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr)
  const status = () => agent.get<Status>('/v1/job/rps')
  const count = async () => (await status()).job.groups[0]!.count

  // Through the mesh port of the agent (busybox httpd closes each connection: one request, one connection counted).
  loading = true
  let answered = 0
  const load = (async () => {
    while (loading) answered += (await autocannon({ url: `http://${host}:${published}/`, connections: 2, duration: 1 }))['2xx']
  })()
  await eventually(async () => (await count()) === 3, { what: 'scaled out to 3 on requests', timeoutMs: 60_000 })
  loading = false
  await load
  t.true(answered > 100, `${answered} requests answered through the mesh`)
  const out = (await status()).scaling.web!.events.find((e) => e.reason === 'scaled' && e.to > e.from)!
  t.like(out, { source: 'autoscaler', from: 1, measurement: { metric: 'requests_per_second', target: 20, instances: 1 } })
  t.true(out.measurement!.value > 20, JSON.stringify(out))
  t.regex(out.message, /^[\d.]+ req\/s per instance, target 20, over 1 allocation: 1 → [23]/)

  await eventually(async () => (await count()) === 1, { what: 'scaled back in to 1 when quiet', timeoutMs: 60_000 })
  const events = (await status()).scaling.web!.events
  const back = events.filter((e) => e.reason === 'scaled' && e.to < e.from)
  // The window that straddles the end of the load may still see some requests, so the way down is
  // 3 → 1, or 3 → 2 → 1: each decision follows from its own measurement, limited by scale_in_step 2.
  t.true(back.length >= 1 && back.at(-1)!.to === 1, JSON.stringify(back))
  for (const e of back) {
    // The recorded value is rounded to 0.1: allow for that at an integer boundary.
    const m = e.measurement!
    const expected = (value: number) => Math.max(1, e.from - 2, Math.ceil((m.instances * Math.max(0, value)) / m.target - 1e-9))
    t.true(e.to >= expected(m.value - 0.05) && e.to <= expected(m.value + 0.05), `scale_in_step 2, min 1: ${e.message}`)
  }
  t.true(events.every((e) => e.to >= 1 && e.to <= 3))
})
