// The client decides every service allocation's health (real agent, exec tasks):
// running for min_healthy_time → healthy; a check that never passes → unhealthy
// at healthy_deadline; a task that restarts → unhealthy at once.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocView { id: string; group: string; createTime: number; deploymentStatus?: { healthy?: boolean; timestamp: number } }

const exec = (script: string, extra: object = {}) => ({
  driver: 'exec', config: { command: '/bin/sh', args: ['-c', script] }, resources: { cpu: 20, memory: 8 }, kill_timeout: '1s', ...extra,
})
const restart = { attempts: 3, interval: '5m', delay: '500ms', mode: 'fail' }
const jobFile = {
  job: { ahealth: {
    update: { min_healthy_time: '1s', healthy_deadline: '4s', progress_deadline: '0' },
    group: {
      good: { restart, task: { t: exec('exec sleep 600') } },
      checked: { restart, task: { t: exec('touch ready; exec sleep 600', { check: [{ type: 'command', command: '/bin/sh', args: ['-c', 'test -f ready'], interval: '300ms' }] }) } },
      failing: { restart, task: { t: exec('exec sleep 600', { check: [{ type: 'command', command: '/bin/sh', args: ['-c', 'test -f never'], interval: '300ms' }] }) } },
      flapping: { restart, task: { t: exec('sleep 0.3; exit 1') } },
    },
  } },
}

test('healthy after min_healthy_time; unhealthy by healthy_deadline or on a restart', async (t) => {
  const dir = await tempDir('alloc-health')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-alloc-health', bind: '127.0.1.10', httpPort: await freePort() })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'ahealth', '--purge'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'job.json')
  await writeFile(file, JSON.stringify(jobFile))
  const run = await runCli(['job', 'run', file, '--detach'], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr)

  const decided = await eventually(async () => {
    const allocs = await agent.get<AllocView[]>('/v1/job/ahealth/allocations')
    const full = await Promise.all(allocs.map((a) => agent.get<AllocView>(`/v1/allocation/${a.id}`)))
    return full.length === 4 && full.every((a) => a.deploymentStatus?.healthy !== undefined) ? full : false
  }, { timeoutMs: 30_000, what: 'every allocation\'s health decided' })
  const by = Object.fromEntries(decided.map((a) => [a.group, a]))
  t.is(by.good!.deploymentStatus!.healthy, true)
  t.is(by.checked!.deploymentStatus!.healthy, true)
  t.is(by.failing!.deploymentStatus!.healthy, false)
  t.is(by.flapping!.deploymentStatus!.healthy, false)
  // Healthy no sooner than min_healthy_time after placement; the failing check decided by the 4 s deadline.
  t.true(by.good!.deploymentStatus!.timestamp - by.good!.createTime >= 1_000)
  const failingAfter = by.failing!.deploymentStatus!.timestamp - by.failing!.createTime
  t.true(failingAfter >= 4_000 && failingAfter < 10_000, `failing decided after ${failingAfter} ms`)
  const flappingAfter = by.flapping!.deploymentStatus!.timestamp - by.flapping!.createTime
  t.true(flappingAfter < 4_000, `restart decided after ${flappingAfter} ms, before the deadline`)
})
