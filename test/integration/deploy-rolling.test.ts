// Rolling update of a 4-instance busybox httpd service, max_parallel 1, with an
// http check (real agent, real Docker): every instance address is probed
// continuously during the update; at every probe at least 3 answer, and all
// end on the new version.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker } from '../helpers/docker.ts'
import { addrOf, liveAllocs, page, removeNodeContainers, webJob, writeJob, type DeploymentView } from '../helpers/deploy.ts'
import { AgentProcess, freePort, runCli, tempDir } from '../harness/agent.ts'

const update = { max_parallel: 1, min_healthy_time: '1s', healthy_deadline: '20s', progress_deadline: '30s' }

test('max_parallel 1: at least 3 of 4 instances answer at every moment; all end on the new version', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('deploy-rolling')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-deploy-rolling', bind: '127.0.1.11', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'roll', '--purge'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    await removeNodeContainers(docker, self.nodeId)
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'roll.json')
  await writeJob(file, webJob('roll', { count: 4, page: 'version one', update }))
  let r = await runCli(['job', 'run', file], agent.address)
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /Monitoring deployment "[0-9a-f]{8}" of job "roll" version 0/)
  t.regex(r.stdout, /\dT[\d:]+Z Deployment "[0-9a-f]{8}" running: web \d\/4 placed/, 'timestamped progress lines off a terminal')
  t.regex(r.stdout, /Deployment "[0-9a-f]{8}" successful: Deployment completed successfully/)
  const first = await liveAllocs(agent, 'roll')
  t.is(first.length, 4)
  for (const a of first) t.is(await page(addrOf(a)), 'version one')

  // Probe every address ever seen, all at once, as fast as they answer.
  const addresses = new Set(first.map(addrOf))
  let probing = true
  let probes = 0
  let fewest = Infinity
  const lows: string[] = []
  const prober = (async () => {
    while (probing) {
      for (const a of await liveAllocs(agent, 'roll').catch(() => [])) addresses.add(addrOf(a))
      const answers = await Promise.all([...addresses].map((addr) => page(addr)))
      const answering = answers.filter((p) => p !== null).length
      probes++
      fewest = Math.min(fewest, answering)
      if (answering < 3) lows.push(`${new Date().toISOString()}: ${answering} answering (${answers.map((p) => p ?? 'no answer').join(', ')})`)
    }
  })()

  await writeJob(file, webJob('roll', { count: 4, page: 'version two', update }))
  r = await runCli(['job', 'run', file], agent.address)
  probing = false
  await prober
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /version 1/)
  t.regex(r.stdout, /Deployment "[0-9a-f]{8}" successful/)
  t.true(probes > 20, `${probes} probes`)
  t.deepEqual(lows, [], `fewest answering: ${fewest}`)
  t.true(fewest >= 3)

  const after = await liveAllocs(agent, 'roll')
  t.is(after.length, 4)
  t.true(after.every((a) => a.jobVersion === 1))
  for (const a of after) t.is(await page(addrOf(a)), 'version two')
  const d = await agent.get<DeploymentView>('/v1/job/roll/deployment')
  t.like(d, { jobVersion: 1, status: 'successful' })
  t.like(d.groups.web, { desiredTotal: 4, placed: 4, healthy: 4, unhealthy: 0 })

  // deployment list/status show it; --check-index with a stale index is refused and changes nothing.
  r = await runCli(['deployment', 'list'], agent.address)
  t.regex(r.stdout, new RegExp(`${d.id.slice(0, 8)}\\s+roll\\s+1\\s+successful`))
  r = await runCli(['deployment', 'status', d.id.slice(0, 6)], agent.address)
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /Job\s+= roll \(version 1, stable\)/)
  t.regex(r.stdout, /web\s+4\s+4\s+4\s+0/)
  r = await runCli(['job', 'run', file, '--check-index', '1'], agent.address)
  t.is(r.code, 1)
  t.regex(r.stderr, /job "roll" was modified at index \d+, not 1/)
  t.regex(r.stderr, /Current modify index: \d+/)
  t.is((await agent.get<{ version: number }>('/v1/job/roll')).version, 1, 'nothing changed')
})
