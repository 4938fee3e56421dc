// A drain's deadline and --ignore-system on a real (dev) agent: with --force
// (deadline 0) every service allocation stops at once (its replacement is
// still asked for: blocked, as the only node is ineligible), the system
// allocation stays with --ignore-system, the drain completes; --disable then
// makes the node eligible again and the replacements start.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocStub { id: string; name: string; desiredStatus: string; desiredDescription: string; clientStatus: string }

const MARK = `shoal-drain-deadline-test-${process.pid}`
const task = { driver: 'exec', config: { command: '/bin/sh', args: ['-c', `echo ${MARK}; exec sleep 600`] }, resources: { cpu: 20, memory: 8 }, kill_timeout: '1s' }

test('--force stops everything at once, --ignore-system keeps system allocations, --disable makes the node eligible again', async (t) => {
  t.timeout(4 * 60_000)
  const dir = await tempDir('drain-deadline')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-drain-deadline', bind: '127.0.2.3', httpPort: await freePort() })
  t.teardown(async () => {
    for (const job of ['fsvc', 'fsys']) await runCli(['job', 'stop', job, '--purge', '--detach'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    try { execFileSync('pkill', ['-f', MARK]) } catch { /* none left */ }
    await rm(dir, { recursive: true, force: true })
  })
  const cli = (...args: string[]) => runCli(args, agent.address)
  await writeFile(join(dir, 'svc.json'), JSON.stringify({ job: { fsvc: { group: { g: { count: 2, task: { t: task } } } } } }))
  await writeFile(join(dir, 'sys.json'), JSON.stringify({ job: { fsys: { type: 'system', group: { s: { task: { t: task } } } } } }))
  for (const f of ['svc.json', 'sys.json']) {
    const r = await cli('job', 'run', join(dir, f))
    t.is(r.code, 0, r.stdout + r.stderr)
  }
  const live = async (job: string) => (await agent.get<AllocStub[]>(`/v1/job/${job}/allocations`)).filter((a) => a.desiredStatus === 'run')

  const drain = await cli('node', 'drain', 'it-drain-deadline', '--enable', '--force', '--ignore-system')
  t.is(drain.code, 0, drain.stdout + drain.stderr)
  t.regex(drain.stdout, /draining: deadline .* \(0s\), system jobs stay/)
  t.regex(drain.stdout, /drain complete/)
  const stopped = (await agent.get<AllocStub[]>('/v1/job/fsvc/allocations')).filter((a) => a.desiredStatus === 'stop')
  t.is(stopped.length, 2)
  t.true(stopped.every((a) => a.desiredDescription === 'node drain deadline reached'))
  t.deepEqual(await live('fsvc'), [], 'no replacement: the only node is ineligible')
  t.regex((await cli('job', 'status', 'fsvc')).stdout, /node it-drain-deadline: ineligible for scheduling/)
  t.is((await live('fsys')).length, 1, 'the system allocation stays')
  t.is((await live('fsys'))[0]!.clientStatus, 'running')

  const off = await cli('node', 'drain', 'it-drain-deadline', '--disable')
  t.is(off.code, 0, off.stdout + off.stderr)
  t.regex(off.stdout, /was not draining; eligible for scheduling/, 'the drain had completed')
  await eventually(async () => {
    const now = await live('fsvc')
    return now.length === 2 && now.every((a) => a.clientStatus === 'running')
  }, { what: 'the blocked replacements running once the node is eligible', timeoutMs: 60_000 })
})
