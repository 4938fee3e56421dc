// Canary 1 + promote (real agent, Docker): one new instance beside the old ones
// until `deployment promote`, then the rest roll. Bad input: promoting without
// canaries, unknown deployment ids.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker } from '../helpers/docker.ts'
import { addrOf, liveAllocs, page, removeNodeContainers, webJob, writeJob, type DeploymentView } from '../helpers/deploy.ts'
import { AgentProcess, freePort, runCli, tempDir } from '../harness/agent.ts'

const update = { max_parallel: 2, min_healthy_time: '1s', healthy_deadline: '20s', progress_deadline: '30s', canary: 1 }

test('canary 1: exactly one new instance beside the old ones until promotion, then the rest roll', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('deploy-canary')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-deploy-canary', bind: '127.0.1.13', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'can', '--purge'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    await removeNodeContainers(docker, self.nodeId)
    await rm(dir, { recursive: true, force: true })
  })
  const cli = (...args: string[]) => runCli(args, agent.address)
  const file = join(dir, 'can.json')
  await writeJob(file, webJob('can', { count: 3, page: 'old', update }))
  let r = await cli('job', 'run', file)
  t.is(r.code, 0, r.stdout + r.stderr)
  const first = await agent.get<DeploymentView>('/v1/job/can/deployment')
  r = await cli('deployment', 'promote', first.id)
  t.is(r.code, 1)
  t.regex(r.stderr, new RegExp(`deployment ${first.id} (has no canaries to promote|is successful, not running: nothing to promote)`))

  await writeJob(file, webJob('can', { count: 3, page: 'new', update }))
  r = await cli('job', 'run', file)
  t.is(r.code, 3, r.stdout + r.stderr)
  t.regex(r.stdout, /canaries are healthy and await promotion: shoal deployment promote [0-9a-f]{8}/)
  const waitAndCount = async () => {
    const live = await liveAllocs(agent, 'can')
    const pages = await Promise.all(live.map((a) => page(addrOf(a))))
    return { total: live.length, fresh: pages.filter((p) => p === 'new').length, old: pages.filter((p) => p === 'old').length }
  }
  t.deepEqual(await waitAndCount(), { total: 4, fresh: 1, old: 3 })
  await new Promise((res) => setTimeout(res, 3_000))
  t.deepEqual(await waitAndCount(), { total: 4, fresh: 1, old: 3 }, 'nothing rolls before promotion')
  const d = await agent.get<DeploymentView>('/v1/job/can/deployment')
  t.like(d, { jobVersion: 1, status: 'running' })
  t.like(d.groups.web, { desiredCanaries: 1, promoted: false, placed: 1, healthy: 1 })
  t.is(d.allocations.filter((a) => a.canary).length, 1)

  r = await cli('deployment', 'status', d.id)
  t.regex(r.stdout, /web\s+3\s+1\/1\s+false\s+1\s+1\s+0/)
  r = await cli('deployment', 'promote', d.id.slice(0, 8))
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /promoted/)
  t.regex(r.stdout, /Deployment "[0-9a-f]{8}" successful/)
  t.deepEqual(await waitAndCount(), { total: 3, fresh: 3, old: 0 })
  const done = await agent.get<DeploymentView>(`/v1/deployment/${d.id}`)
  t.like(done.groups.web, { promoted: true, healthy: 3, unhealthy: 0 })

  for (const [args, code, re] of [
    [['deployment', 'status', 'ffffffff'], 4, /deployment "ffffffff" not found/],
    [['deployment', 'promote', 'ffffffff'], 4, /deployment "ffffffff" not found/],
    [['deployment', 'fail', 'ffffffff'], 4, /deployment "ffffffff" not found/],
  ] as const) {
    const bad = await cli(...args)
    t.is(bad.code, code, args.join(' '))
    t.regex(bad.stderr, re, args.join(' '))
  }
  t.is((await agent.get<{ version: number }>('/v1/job/can')).version, 1, 'nothing changed')
})
