// Job versions on a real dev agent: scale without restarting what runs,
// history, revert, and check-and-set on job run.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocStub { id: string; desiredStatus: string; clientStatus: string; jobVersion: number }
interface Detail { version: number; modifyIndex: number; allocations: AllocStub[] }

const MARK = `shoal-versions-test-${process.pid}`
const jobFile = (env: string) => JSON.stringify({
  job: { v: { update: { min_healthy_time: '1s' }, group: { g: { count: 2, task: { t: { driver: 'exec', env: { E: env }, config: { command: '/bin/sh', args: ['-c', `echo ${MARK}; exec sleep 600`] }, resources: { cpu: 20, memory: 8 } } } } } } },
})

test('scale keeps running allocations; history lists versions; revert runs an old one; --check-index refuses a stale index', async (t) => {
  const dir = await tempDir('versions')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-versions', bind: '127.0.0.26', httpPort: await freePort() })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'v', '--purge'], agent.address).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  const cli = (...args: string[]) => runCli(args, agent.address)
  const running = async () => (await agent.get<Detail>('/v1/job/v')).allocations.filter((a) => a.desiredStatus === 'run' && a.clientStatus === 'running')
  const file = join(dir, 'v.json')
  await writeFile(file, jobFile('one'))

  let r = await cli('job', 'run', file, '--check-index', '0')
  t.is(r.code, 0, r.stdout + r.stderr)
  const v0 = (await running()).map((a) => a.id).sort()
  t.is(v0.length, 2)

  r = await cli('job', 'run', file, '--check-index', '0')
  t.is(r.code, 1, 'create-only on an existing job is refused')
  t.regex(r.stderr, /was modified at index \d+, not 0/)

  r = await cli('job', 'scale', 'v', 'g', '3')
  t.is(r.code, 0, r.stdout + r.stderr)
  const after = await running()
  t.is(after.length, 3)
  for (const id of v0) t.true(after.some((a) => a.id === id), 'the two running allocations were kept')
  t.true(after.every((a) => a.jobVersion === 1), 'all on version 1')

  await writeFile(file, jobFile('two'))
  const detail = await agent.get<Detail>('/v1/job/v')
  r = await cli('job', 'run', file, '--check-index', String(detail.modifyIndex))
  t.is(r.code, 0, r.stdout + r.stderr)
  t.is((await agent.get<Detail>('/v1/job/v')).version, 2)

  r = await cli('job', 'history', 'v')
  t.regex(r.stdout, /2 .*g tasks changed/)
  t.regex(r.stdout, /1 .*g count 2→3/)
  t.regex(r.stdout, /0 .*first version/)

  r = await cli('job', 'revert', 'v', '0')
  t.is(r.code, 0, r.stdout + r.stderr)
  const reverted = await agent.get<Detail & { job: { groups: { count: number; tasks: { env: Record<string, string> }[] }[] } }>('/v1/job/v')
  t.is(reverted.version, 3)
  t.is(reverted.job.groups[0]!.count, 2)
  t.is(reverted.job.groups[0]!.tasks[0]!.env.E, 'one')
  t.is((await running()).length, 2)

  for (const [args, re] of [
    [['job', 'revert', 'v', '9'], /version: job "v" has no version 9 \(versions: 0, 1, 2, 3\)/],
    [['job', 'scale', 'v', 'nope', '1'], /group: job "v" has no group "nope" \(groups: g\)/],
    [['job', 'scale', 'v', 'g', '-1'], /count: must be an integer ≥ 0/],
    [['job', 'scale', 'missing', 'g', '1'], /job "missing" not found/],
  ] as const) {
    const bad = await cli(...args)
    t.not(bad.code, 0, args.join(' '))
    t.regex(bad.stderr, re, args.join(' '))
  }
  t.is((await agent.get<Detail>('/v1/job/v')).version, 3, 'nothing changed')
})
