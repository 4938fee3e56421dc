// A version whose health check never passes fails by its deadline and, with
// auto_revert, the job goes back to the last stable version (real agent, Docker).
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker } from '../helpers/docker.ts'
import { addrOf, liveAllocs, page, removeNodeContainers, webJob, writeJob, type DeploymentView } from '../helpers/deploy.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

const update = { max_parallel: 1, min_healthy_time: '1s', healthy_deadline: '10s', progress_deadline: '12s', auto_revert: true }

test('a version that never becomes healthy fails at healthy_deadline and auto-reverts to the stable version', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('deploy-revert')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-deploy-revert', bind: '127.0.1.12', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'rev', '--purge'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    await removeNodeContainers(docker, self.nodeId)
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'rev.json')
  await writeJob(file, webJob('rev', { count: 3, page: 'good', update }))
  let r = await runCli(['job', 'run', file], agent.address)
  t.is(r.code, 0, r.stdout + r.stderr)
  const good = (await liveAllocs(agent, 'rev')).map((a) => a.id).sort()
  t.is((await agent.get<{ job: { stable?: boolean } }>('/v1/job/rev')).job.stable, true, 'version 0 is stable once its deployment succeeded')

  await writeJob(file, webJob('rev', { count: 3, page: 'bad', update, checkPath: '/missing' }))
  const started = Date.now()
  r = await runCli(['job', 'run', file], agent.address)
  const took = Date.now() - started
  t.is(r.code, 1, r.stdout + r.stderr)
  t.regex(r.stdout, /Deployment "[0-9a-f]{8}" failed: Failed: 1 allocation\(s\) of group "web" unhealthy; rolling back to job version 0/)
  t.regex(r.stderr, /Error: deployment [0-9a-f]{8} failed/)
  t.true(took >= 10_000, `failed after ${took} ms: not before healthy_deadline`)

  // The revert is version 2 (the spec of version 0); its deployment ends successful, on healthy allocations.
  const d = await eventually(async () => {
    const dep = await agent.get<DeploymentView>('/v1/job/rev/deployment')
    return dep.jobVersion === 2 && dep.status === 'successful' ? dep : false
  }, { timeoutMs: 60_000, what: 'the reverted version deployed' })
  t.like(d.groups.web, { desiredTotal: 3, healthy: 3, unhealthy: 0 })
  const job = await agent.get<{ version: number; stable?: boolean; job: { groups: { tasks: { env: Record<string, string> }[] }[] } }>('/v1/job/rev')
  t.is(job.version, 2)
  t.is(job.job.groups[0]!.tasks[0]!.env.PAGE, 'good')
  const live = await liveAllocs(agent, 'rev')
  t.is(live.length, 3)
  t.true(live.every((a) => a.jobVersion === 2 && a.clientStatus === 'running'))
  for (const a of live) t.is(await page(addrOf(a)), 'good')
  t.is(live.filter((a) => good.includes(a.id)).length, 2, 'the two never-replaced allocations moved to version 2 in place')
  const failed = (await agent.get<DeploymentView[]>('/v1/deployments?job=rev')).find((x) => x.jobVersion === 1)!
  t.is(failed.status, 'failed')

  r = await runCli(['job', 'history', 'rev'], agent.address)
  t.is(r.code, 0)
  t.regex(r.stdout, /^2\s+true\s/m)
  t.regex(r.stdout, /^1\s+false\s.*web tasks changed/m)
  t.regex(r.stdout, /^0\s+true\s.*first version/m)
  r = await runCli(['job', 'revert', 'rev', '7'], agent.address)
  t.not(r.code, 0)
  t.regex(r.stderr, /version: job "rev" has no version 7 \(versions: 0, 1, 2\)/)
  r = await runCli(['deployment', 'fail', failed.id], agent.address)
  t.is(r.code, 1)
  t.regex(r.stderr, new RegExp(`deployment ${failed.id} is already failed`))
  t.is((await agent.get<{ version: number }>('/v1/job/rev')).version, 2, 'nothing changed')
})
