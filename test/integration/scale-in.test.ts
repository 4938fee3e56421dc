// Scaling in on a real agent: the least healthy allocation stops first, then
// the newest; the ones that stay keep running untouched (no restart). Bad
// scale requests change nothing.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocView {
  id: string; index: number; desiredStatus: string; desiredDescription: string; clientStatus: string; createIndex: number; previousAllocId?: string
  deploymentStatus?: { healthy?: boolean }
  taskStates: Record<string, { startedAt?: number; restarts: number; health?: string }>
}

test('scale-in stops the least healthy, then the newest; the others are not restarted; bad input changes nothing', async (t) => {
  t.timeout(4 * 60_000)
  const dir = await tempDir('scale-in')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-scale-in', bind: '127.0.2.2', httpPort: await freePort() })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'sc', '--purge'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  // Index 1 fails once (its replacement is the newest allocation); index 0 never passes its check (the least healthy).
  const script = `if [ "$SHOAL_ALLOC_INDEX" = 1 ] && [ ! -f ${dir}/failed-once ]; then touch ${dir}/failed-once; exit 1; fi
if [ "$SHOAL_ALLOC_INDEX" != 0 ]; then touch ready; fi
exec sleep 600`
  const job = { job: { sc: {
    update: { min_healthy_time: '1s', healthy_deadline: '20s', progress_deadline: '0' },
    group: { g: {
      count: 3,
      restart: { attempts: 0, interval: '1m', delay: '1s', mode: 'fail' },
      reschedule: { delay: '1s', delay_function: 'constant', unlimited: true },
      task: { t: {
        driver: 'exec', config: { command: '/bin/sh', args: ['-c', script] }, resources: { cpu: 20, memory: 8 }, kill_timeout: '1s',
        check: [{ type: 'command', command: '/bin/sh', args: ['-c', 'test -f ready'], interval: '300ms', retries: 2 }],
      } },
    } },
  } } }
  const file = join(dir, 'sc.json')
  await writeFile(file, JSON.stringify(job))
  const run = await runCli(['job', 'run', file, '--detach'], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr)

  const liveAllocs = async () => {
    const stubs = await agent.get<{ id: string; desiredStatus: string }[]>('/v1/job/sc/allocations')
    return Promise.all(stubs.filter((a) => a.desiredStatus === 'run').map((a) => agent.get<AllocView>(`/v1/allocation/${a.id}`)))
  }
  const byIndex = await eventually(async () => {
    const live = await liveAllocs()
    const m = new Map(live.map((a) => [a.index, a]))
    const ok = live.length === 3 && live.every((a) => a.clientStatus === 'running') &&
      m.get(0)?.taskStates.t?.health === 'unhealthy' && m.get(1)?.previousAllocId !== undefined &&
      m.get(1)?.deploymentStatus?.healthy === true && m.get(2)?.deploymentStatus?.healthy === true
    return ok && m
  }, { what: 'index 0 unhealthy, index 1 replaced once and healthy, index 2 healthy', timeoutMs: 90_000 })
  const [a0, a1, a2] = [byIndex.get(0)!, byIndex.get(1)!, byIndex.get(2)!]
  t.true(a1.createIndex > a2.createIndex && a1.createIndex > a0.createIndex, 'index 1 is the newest')

  // 3 → 2: the unhealthy one stops (not the highest index, not the newest).
  let r = await runCli(['job', 'scale', 'sc', 'g', '2', '--detach'], agent.address)
  t.is(r.code, 0, r.stdout + r.stderr)
  await eventually(async () => {
    const ids = (await liveAllocs()).map((a) => a.id).sort()
    return ids.join() === [a1.id, a2.id].sort().join()
  }, { what: 'the unhealthy allocation stopped', timeoutMs: 30_000 })
  t.is((await agent.get<AllocView>(`/v1/allocation/${a0.id}`)).desiredDescription, 'scaled down')

  // 2 → 1: both healthy: the newest stops.
  r = await runCli(['job', 'scale', 'sc', 'g', '1', '--detach'], agent.address)
  t.is(r.code, 0, r.stdout + r.stderr)
  const left = await eventually(async () => {
    const live = await liveAllocs()
    return live.length === 1 && live
  }, { what: 'one allocation left', timeoutMs: 30_000 })
  t.is(left[0]!.id, a2.id, 'the newest (index 1) stopped, index 2 stays')
  t.is(left[0]!.clientStatus, 'running')
  t.is(left[0]!.taskStates.t!.startedAt, a2.taskStates.t!.startedAt, 'the allocation that stays was not restarted')
  t.is(left[0]!.taskStates.t!.restarts, 0)

  // Bad input: nothing changes.
  const version = (await agent.get<{ version: number }>('/v1/job/sc')).version
  for (const [args, re] of [
    [['job', 'scale', 'sc', 'g', '1.5'], /count: must be an integer ≥ 0 \(got "1\.5"\)/],
    [['job', 'scale', 'sc', 'g', 'two'], /count: must be an integer ≥ 0 \(got "two"\)/],
    [['job', 'scale', 'sc', 'g', '-1'], /count: must be an integer ≥ 0/],
    [['job', 'scale', 'sc', 'nope', '1'], /group: job "sc" has no group "nope" \(groups: g\)/],
    [['job', 'scale', 'missing', 'g', '1'], /job "missing" not found/],
  ] as const) {
    const bad = await runCli([...args], agent.address)
    t.not(bad.code, 0, args.join(' '))
    t.regex(bad.stderr, re, args.join(' '))
  }
  for (const [body, field] of [[{ group: 'g', count: 2.5 }, 'count'], [{ group: 'g', count: '2' }, 'count'], [{ group: 'g', count: -3 }, 'count'], [{ count: 2 }, 'group']] as const) {
    const res = await fetch(`${agent.address}/v1/job/sc/scale`, { method: 'POST', body: JSON.stringify(body) })
    t.is(res.status, 400, JSON.stringify(body))
    t.is(((await res.json()) as { field: string }).field, field)
  }
  t.is((await agent.get<{ version: number }>('/v1/job/sc')).version, version, 'no new version')
  t.deepEqual((await liveAllocs()).map((a) => a.id), [a2.id], 'nothing stopped or placed')
})
