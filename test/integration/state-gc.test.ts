// State GC end to end: a real agent, exec tasks, the CLI. `shoal system gc`
// removes a stopped job with its evaluations and allocations, and leaves a
// running job alone; the removal is a Raft write, so it survives a restart.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocStub { id: string; jobId: string; evalId: string; desiredStatus: string; clientStatus: string }

const sleeper = (id: string, count: number) => ({ job: { [id]: { group: { g: { count, task: {
  sleep: { driver: 'exec', config: { command: '/bin/sleep', args: ['300'] }, resources: { cpu: 20, memory: 16 } },
} } } } } })

test('system gc removes a stopped job, its evaluations and allocations; a running job stays; it survives a restart', async (t) => {
  const dir = await tempDir('state-gc')
  const options = { dataDir: join(dir, 'data'), name: 'it-state-gc', bind: '127.0.0.61', httpPort: await freePort() }
  let agent = await AgentProcess.start(options)
  t.teardown(async () => {
    await runCli(['job', 'stop', 'keep'], agent.address).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  for (const [id, count] of [['keep', 1], ['old', 2]] as const) {
    const file = join(dir, `${id}.json`)
    await writeFile(file, JSON.stringify(sleeper(id, count)))
    const run = await runCli(['job', 'run', file, '--detach'], agent.address)
    t.is(run.code, 0, run.stdout + run.stderr)
  }
  await eventually(async () => (await agent.get<AllocStub[]>('/v1/allocations')).filter((a) => a.clientStatus === 'running').length === 3, { what: '3 allocations running' })
  const stop = await runCli(['job', 'stop', 'old'], agent.address)
  t.is(stop.code, 0, stop.stdout + stop.stderr)
  const oldAllocs = (await agent.get<AllocStub[]>('/v1/allocations')).filter((a) => a.jobId === 'old')
  const oldEvals = new Set(oldAllocs.map((a) => a.evalId))
  await eventually(async () => (await agent.get<AllocStub[]>('/v1/job/old/allocations')).every((a) => a.clientStatus === 'complete'), { what: 'old stopped' })

  const gc = await runCli(['system', 'gc'], agent.address)
  t.is(gc.code, 0, gc.stdout + gc.stderr)
  t.regex(gc.stdout, /Removed \d+ evaluation\(s\), 2 allocation\(s\), 1 job\(s\)/)
  const check = async () => {
    const left = await agent.get<AllocStub[]>('/v1/allocations')
    t.deepEqual(left.map((a) => [a.jobId, a.clientStatus]), [['keep', 'running']])
    t.deepEqual((await agent.get<{ id: string }[]>('/v1/jobs')).map((j) => j.id), ['keep'])
    for (const path of ['/v1/job/old', `/v1/allocation/${oldAllocs[0]!.id}`, ...[...oldEvals].map((e) => `/v1/evaluation/${e}`)]) {
      t.is((await fetch(agent.address + path)).status, 404, path)
    }
  }
  await check()
  const again = await runCli(['system', 'gc', '--json'], agent.address)
  t.is(again.code, 0, again.stderr)
  t.deepEqual(JSON.parse(again.stdout), { evals: 0, allocs: 0, jobs: 0, index: null }, 'nothing left to collect: no write')

  await agent.kill()
  agent = await AgentProcess.start(options)
  // A restarted member applies at once the log up to the commit index it stored, the rest once it leads again.
  await eventually(async () => (await agent.get<AllocStub[]>('/v1/allocations')).length === 1, { what: 'the log replayed, the collection with it' })
  await check()
})

test('with --gc-threshold and --gc-interval the leader collects a stopped job by itself; a running job stays', async (t) => {
  const dir = await tempDir('state-gc-periodic')
  const agent = await AgentProcess.start({
    dataDir: join(dir, 'data'), name: 'it-state-gc-periodic', bind: '127.0.0.62', httpPort: await freePort(),
    extraArgs: ['--gc-threshold', '2s', '--gc-interval', '1s'],
  })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'stays'], agent.address).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  for (const id of ['stays', 'goes']) {
    const file = join(dir, `${id}.json`)
    await writeFile(file, JSON.stringify(sleeper(id, 1)))
    const run = await runCli(['job', 'run', file, '--detach'], agent.address)
    t.is(run.code, 0, run.stdout + run.stderr)
  }
  await eventually(async () => (await agent.get<AllocStub[]>('/v1/allocations')).filter((a) => a.clientStatus === 'running').length === 2, { what: '2 allocations running' })
  const stop = await runCli(['job', 'stop', 'goes'], agent.address)
  t.is(stop.code, 0, stop.stdout + stop.stderr)
  const goneAlloc = (await agent.get<AllocStub[]>('/v1/job/goes/allocations'))[0]!
  // No `system gc`: the leader's periodic collection removes it once it has been finished for 2 s.
  await eventually(async () => (await fetch(`${agent.address}/v1/job/goes`)).status === 404, { what: 'the stopped job collected', timeoutMs: 30_000 })
  t.is((await fetch(`${agent.address}/v1/allocation/${goneAlloc.id}`)).status, 404, 'its allocation collected')
  t.is((await fetch(`${agent.address}/v1/evaluation/${goneAlloc.evalId}`)).status, 404, 'its evaluation collected')
  t.deepEqual((await agent.get<AllocStub[]>('/v1/allocations')).map((a) => [a.jobId, a.clientStatus]), [['stays', 'running']])
  t.regex(agent.output, /state gc: removed \d+ evaluation\(s\), \d+ allocation\(s\), 1 job\(s\)/, 'the agent says what it removed')
})
