// Node drain and eligibility on three real agents with Docker: a service of 3
// allocations on one node moves elsewhere one at a time, each replacement
// healthy before the allocation it replaces stops (sampled continuously: the
// allocations the state calls healthy, and HTTP probes of the instances); a
// system allocation stops last; the drained node ends empty and ineligible;
// an ineligible node gets no new allocation and `job plan` says why;
// draining or setting the eligibility of an unknown node changes nothing.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'

interface AllocStub {
  id: string; name: string; nodeName: string; desiredStatus: string; desiredDescription: string; clientStatus: string; modifyTime: number
  desiredTransition?: { migrate: boolean; force?: boolean }
  ports: { label: string; value: number; hostIp: string }[]
}
interface AllocDetail { id: string; deploymentStatus?: { healthy?: boolean } }
interface NodeView { id: string; name: string; eligible: boolean; drain?: object; lastDrain?: { status: string }; allocations: AllocStub[] }

const MARK = `shoal-drain-test-${process.pid}`
const COUNT = 3
const MAX_PARALLEL = 1

const webJob = {
  job: { dweb: {
    update: { min_healthy_time: '1s', healthy_deadline: '1m', progress_deadline: '0' },
    group: { fe: {
      count: COUNT,
      network: { port: { http: { to: 80 } } },
      migrate: { max_parallel: MAX_PARALLEL, min_healthy_time: '2s', healthy_deadline: '1m' },
      task: { httpd: {
        driver: 'docker',
        config: { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '80', '-h', '/www'], ports: ['http'] },
        resources: { cpu: 50, memory: 32 }, kill_timeout: '2s',
        check: [{ type: 'http', port: 'http', path: '/', interval: '500ms', timeout: '1s' }],
      } },
    } },
  } },
}
const sysJob = {
  job: { dsys: { type: 'system', group: { s: { task: { t: {
    driver: 'exec', config: { command: '/bin/sh', args: ['-c', `echo ${MARK}; exec sleep 600`] }, resources: { cpu: 20, memory: 8 }, kill_timeout: '1s',
  } } } } } },
}
/** One allocation per node, pinned away from nothing: shows where new placements may go. */
const spreadJob = {
  job: { dnew: { group: { g: { count: 3, constraint: [{ operator: 'distinct_hosts' }], task: { t: {
    driver: 'exec', config: { command: '/bin/sh', args: ['-c', `echo ${MARK}; exec sleep 600`] }, resources: { cpu: 20, memory: 8 }, kill_timeout: '1s',
  } } } } } },
}

async function probe(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}

test('drain moves a service off a node one at a time, never below count - max_parallel healthy; eligibility; unknown nodes', async (t) => {
  t.timeout(6 * 60_000) // three agents, Docker and ~15 CLI runs: minutes on a loaded machine
  await requireDocker()
  const dir = await tempDir('drain')
  const hosts = ['127.0.2.11', '127.0.2.12', '127.0.2.13']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const agents: AgentProcess[] = []
  t.teardown(async () => {
    for (const job of ['dweb', 'dsys', 'dnew']) await runCli(['job', 'stop', job, '--purge', '--detach'], agents[1]?.address, 30_000).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 3_000))
    for (const a of agents) await a.kill()
    try { execFileSync('pkill', ['-f', MARK]) } catch { /* none left */ }
    await rm(dir, { recursive: true, force: true })
  })
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({
      dataDir: join(dir, `n${i + 1}`), name: `dn${i + 1}`, bind, httpPort: await freePort(), dev: false, ...(i > 0 ? { join: [binds[0]!] } : {}),
    }))
  }
  const [, n2] = agents
  const via = n2! // the CLI talks to a follower or the leader alike
  const cli = (...args: string[]) => runCli(args, via.address)


  // Pin the service to dn1: the other two nodes are ineligible while it is placed.
  for (const n of ['dn2', 'dn3']) {
    const r = await cli('node', 'eligibility', n, '--disable')
    t.is(r.code, 0, r.stdout + r.stderr)
    t.regex(r.stdout, new RegExp(`Node "${n}" .* is ineligible for scheduling`))
  }
  const files = { web: join(dir, 'web.json'), sys: join(dir, 'sys.json'), spread: join(dir, 'spread.json') }
  await writeFile(files.web, JSON.stringify(webJob))
  await writeFile(files.sys, JSON.stringify(sysJob))
  await writeFile(files.spread, JSON.stringify(spreadJob))
  let r = await cli('job', 'run', files.web)
  t.is(r.code, 0, r.stdout + r.stderr)
  r = await cli('job', 'run', files.sys)
  t.is(r.code, 0, r.stdout + r.stderr)
  const live = async () => (await via.get<AllocStub[]>('/v1/job/dweb/allocations')).filter((a) => a.desiredStatus === 'run')
  const before = await live()
  t.is(before.length, COUNT)
  t.true(before.every((a) => a.nodeName === 'dn1'), before.map((a) => a.nodeName).join())
  t.deepEqual((await via.get<AllocStub[]>('/v1/job/dsys/allocations')).map((a) => a.nodeName), ['dn1'], 'the system job skips ineligible nodes')
  const healthyOf = async (allocs: AllocStub[]) => {
    const full = await Promise.all(allocs.map((a) => via.get<AllocDetail>(`/v1/allocation/${a.id}`).catch(() => null)))
    return full.filter((a) => a?.deploymentStatus?.healthy === true).length
  }
  await eventually(async () => (await healthyOf(await live())) === COUNT, { what: 'the 3 allocations healthy', timeoutMs: 30_000 })
  for (const n of ['dn2', 'dn3']) t.is((await cli('node', 'eligibility', n, '--enable')).code, 0)

  // Sample continuously while the drain runs.
  let sampling = true
  const samples: { healthy: number; answering: number; migrating: number }[] = []
  const sampler = (async () => {
    while (sampling) {
      const allocs = (await live().catch(() => null))
      if (allocs) {
        const running = allocs.filter((a) => a.clientStatus === 'running')
        const [healthy, answers] = await Promise.all([
          healthyOf(running),
          Promise.all(running.map((a) => probe(`http://${a.ports[0]!.hostIp}:${a.ports[0]!.value}/`))),
        ])
        samples.push({ healthy, answering: answers.filter(Boolean).length, migrating: allocs.filter((a) => a.desiredTransition?.migrate).length })
      }
      await new Promise((res) => setTimeout(res, 100))
    }
  })()
  const started = Date.now()
  const drain = await runCli(['node', 'drain', 'dn1', '--enable', '--deadline', '5m'], via.address, 150_000)
  sampling = false
  await sampler
  t.log(`drain took ${Date.now() - started} ms; ${samples.length} samples`)
  t.is(drain.code, 0, drain.stdout + drain.stderr)
  t.regex(drain.stdout, /Node "dn1" .* draining: deadline/)
  t.regex(drain.stdout, /dweb\.fe\[\d\]: migrating/)
  t.regex(drain.stdout, /stopped \(migrated: its replacement is healthy\)/)
  t.regex(drain.stdout, /Node "dn1" drain complete; it stays ineligible for scheduling/)
  t.true(samples.length > 20, `${samples.length} samples`)
  const minHealthy = Math.min(...samples.map((s) => s.healthy))
  const minAnswering = Math.min(...samples.map((s) => s.answering))
  const maxMigrating = Math.max(...samples.map((s) => s.migrating))
  t.log(`min healthy ${minHealthy}, min answering ${minAnswering}, max migrating at once ${maxMigrating}`)
  t.true(minHealthy >= COUNT - MAX_PARALLEL, `healthy allocations dropped to ${minHealthy}`)
  t.true(minAnswering >= COUNT - MAX_PARALLEL, `answering instances dropped to ${minAnswering}`)
  t.is(maxMigrating, MAX_PARALLEL, 'one at a time')

  // Everything runs elsewhere; the drained node is empty, ineligible, its drain recorded as complete.
  const after = await live()
  t.is(after.length, COUNT)
  t.true(after.every((a) => a.nodeName !== 'dn1' && a.clientStatus === 'running'), after.map((a) => `${a.nodeName}/${a.clientStatus}`).join())
  const dn1 = await via.get<NodeView>('/v1/node/dn1')
  t.deepEqual(dn1.allocations.filter((a) => a.desiredStatus === 'run'), [], 'nothing left on the drained node')
  t.false(dn1.eligible)
  t.is(dn1.drain, undefined)
  t.is(dn1.lastDrain?.status, 'complete')
  // The system allocation stopped last. The drain's lines carry the time the
  // follower saw each change; changes seen in one read share it (and their
  // order within that read says nothing), so no web stop may be seen later.
  t.is(dn1.allocations.find((a) => a.name.startsWith('dsys.'))?.desiredDescription, 'node drained')
  const lines = drain.stdout.split('\n')
  const seenAt = (l: string) => Date.parse(l.split(' ')[0]!)
  const sysStop = lines.find((l) => /dsys\.s\[0\]: stopped \(node drained\)/.test(l))
  // The first line of each web allocation's stop (a later one reports its tasks ended).
  const webStopped = new Map<string, number>()
  for (const l of lines) {
    const id = /Allocation (\w+) dweb\.fe\[\d\]: stopped/.exec(l)?.[1]
    if (id && !webStopped.has(id)) webStopped.set(id, seenAt(l))
  }
  t.truthy(sysStop, drain.stdout)
  t.is(webStopped.size, COUNT, drain.stdout)
  t.true([...webStopped.values()].every((at) => at <= seenAt(sysStop!)), drain.stdout)
  const status = await cli('node', 'status')
  t.regex(status.stdout, /dn1\s+127\.0\.2\.11\s+\S+\s+-\s+ineligible\s+ready/)
  const one = await cli('node', 'status', 'dn1')
  t.regex(one.stdout, /Eligibility\s+= ineligible/)
  t.regex(one.stdout, /Drain\s+= none \(last drain complete/)
  const json = JSON.parse((await cli('node', 'status', '--json')).stdout) as NodeView[]
  t.like(json.find((n) => n.name === 'dn1'), { eligible: false, lastDrain: { status: 'complete' } })

  // Eligibility: back on, then off again by hand; a new job does not land there and plan says why.
  t.is((await cli('node', 'eligibility', 'dn1', '--enable')).code, 0)
  t.true((await via.get<NodeView>('/v1/node/dn1')).eligible)
  t.is((await cli('node', 'eligibility', 'dn1', '--disable')).code, 0)
  const plan = await cli('job', 'plan', files.spread)
  t.is(plan.code, 2, plan.stdout + plan.stderr)
  t.regex(plan.stdout, /node dn1: ineligible for scheduling/)
  const run = await cli('job', 'run', files.spread)
  t.is(run.code, 2, run.stdout + run.stderr)
  const placed = (await via.get<AllocStub[]>('/v1/job/dnew/allocations')).filter((a) => a.desiredStatus === 'run')
  t.deepEqual(placed.map((a) => a.nodeName).sort(), ['dn2', 'dn3'])
  t.regex((await cli('job', 'status', 'dnew')).stdout, /node ineligible/)

  // Unknown nodes: clear errors, non-zero exits, nothing changed.
  const nodesBefore = await via.get<NodeView[]>('/v1/nodes')
  for (const args of [['node', 'drain', 'nope', '--enable'], ['node', 'eligibility', 'nope', '--disable']]) {
    const bad = await cli(...args)
    t.not(bad.code, 0, args.join(' '))
    t.regex(bad.stderr, /node "nope" not found/, args.join(' '))
  }
  for (const [args, re] of [
    [['node', 'drain', 'dn2'], /give exactly one of --enable or --disable/],
    [['node', 'drain', 'dn2', '--enable', '--deadline', 'soon'], /--deadline: must be a duration like "1h"/],
    [['node', 'drain', 'dn2', '--enable', '--force', '--no-deadline'], /at most one of --deadline, --no-deadline and --force/],
    [['node', 'drain', 'dn2', '--disable', '--ignore-system'], /--ignore-system: only with --enable/],
    [['node', 'eligibility', 'dn2'], /give exactly one of --enable or --disable/],
    [['node', 'eligibility', 'dn1', '--enable', '--disable'], /give exactly one of --enable or --disable/],
  ] as const) {
    const bad = await cli(...args)
    t.is(bad.code, 1, args.join(' '))
    t.regex(bad.stderr, re, args.join(' '))
  }
  const res = await fetch(`${via.address}/v1/node/dn2/drain`, { method: 'POST', body: JSON.stringify({ enable: true, deadline: 5 }) })
  t.is(res.status, 400)
  t.regex(((await res.json()) as { error: string }).error, /^deadline: must be a duration/)
  const nodesAfter = await via.get<NodeView[]>('/v1/nodes')
  t.deepEqual(nodesAfter.map((n) => [n.name, n.eligible, n.drain]), nodesBefore.map((n) => [n.name, n.eligible, n.drain]), 'nothing changed')
})
