// AllocRunner ordering and group rules with a scripted in-memory driver:
// lifecycle hooks, depends_on conditions, essential tasks.
import test, { type ExecutionContext } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { AllocClientUpdate } from '../../src/fsm/commands.ts'
import { validateJob } from '../../src/jobspec/index.ts'
import { AllocRunner, type AllocNetworkHooks } from '../../src/runtime/alloc-runner.ts'
import type { Driver, ExitResult, TaskHandle, TaskStartSpec } from '../../src/runtime/driver.ts'
import type { Allocation, Job } from '../../src/structs/index.ts'

/** Each task exits with `code` after `ms` (never when absent); stop makes it exit 143. */
class ScriptedDriver implements Driver {
  readonly name = 'exec' as const
  readonly log: string[] = []
  readonly #script: Record<string, { ms?: number; code?: number }>
  readonly #exits = new Map<string, { promise: Promise<ExitResult>; resolve: (r: ExitResult) => void }>()
  #n = 0
  constructor(script: Record<string, { ms?: number; code?: number }>) {
    this.#script = script
  }
  async fingerprint() { return { healthy: true, detail: '', attributes: {} } }
  async start(spec: TaskStartSpec): Promise<TaskHandle> {
    const name = spec.task.name
    this.log.push(`start ${name}`)
    const id = String(++this.#n)
    let resolve!: (r: ExitResult) => void
    const promise = new Promise<ExitResult>((r) => (resolve = r))
    this.#exits.set(id, { promise, resolve })
    const s = this.#script[name] ?? {}
    if (s.ms !== undefined) setTimeout(() => this.#exit(id, name, s.code ?? 0), s.ms)
    return { driver: 'exec', id, allocId: spec.allocId, taskName: name, startedAt: Date.now() }
  }
  #exit(id: string, name: string, code: number) {
    const e = this.#exits.get(id)
    if (!e) return
    this.#exits.delete(id)
    this.log.push(`exit ${name} ${code}`)
    e.resolve({ exitCode: code, oomKilled: false })
  }
  wait(h: TaskHandle) { return this.#exits.get(h.id)?.promise ?? Promise.resolve({ exitCode: 0, oomKilled: false }) }
  async stop(h: TaskHandle) { this.#exit(h.id, h.taskName, 143) }
  async destroy() {}
  async logs() { return Readable.from([]) }
  async recover() { return [] }
  async exec() { return { exitCode: 0, stdout: '', stderr: '' } }
  async execSession(): Promise<never> { throw new Error('not scripted') }
  async stats() { return { cpuPercent: 0, memoryRssBytes: 0, timestamp: Date.now() } }
}

type Json = Record<string, unknown>
const task = (extra: Json = {}) => ({ driver: 'exec', config: { command: '/bin/true' }, ...extra })

async function runGroup(t: ExecutionContext, type: string, tasks: Record<string, Json>, script: Record<string, { ms?: number; code?: number }>, network?: AllocNetworkHooks) {
  const r = validateJob({ job: { j: { type, group: { g: { restart: { attempts: 0, delay: '0s', mode: 'fail' }, task: tasks } } } } })
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  const job: Job = { ...r.spec, version: 0, stop: false, submitTime: 0, createIndex: 1, modifyIndex: 1 }
  const alloc = {
    id: `a-${Math.random().toString(16).slice(2)}`, name: 'j.g[0]', jobId: 'j', jobVersion: 0, group: 'g', index: 0, nodeId: 'n', evalId: 'e',
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '', taskStates: {},
    resources: { cpu: 100, memoryMB: 100, ports: [] }, rescheduleCount: 0, createIndex: 1, modifyIndex: 1, createTime: 0, modifyTime: 0,
  } satisfies Allocation
  const dir = await mkdtemp(join(tmpdir(), 'shoal-ar-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const driver = new ScriptedDriver(script)
  let last: AllocClientUpdate | undefined
  const runner = new AllocRunner({ alloc, job, nodeId: 'n', allocsDir: dir, drivers: new Map([['exec', driver]]), recovered: new Map(), onUpdate: (u) => (last = u), ...(network ? { network } : {}) })
  await runner.start()
  const until = async (pred: (u: AllocClientUpdate) => boolean, what: string) => {
    const deadline = Date.now() + 5_000
    while (!(last && pred(last))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last, null, 1)}\nlog: ${driver.log.join(', ')}`)
      await new Promise((r) => setTimeout(r, 10))
    }
    return last
  }
  return { runner, driver, until }
}

test('batch: prestart (sidecar and not) → main → poststart; the main task ends → sidecar killed → poststop → complete', async (t) => {
  const { driver, until } = await runGroup(t, 'batch', {
    side: task({ lifecycle: { hook: 'prestart', sidecar: true } }),
    init: task({ lifecycle: { hook: 'prestart' } }),
    main: task(),
    after: task({ lifecycle: { hook: 'poststart' } }),
    stop: task({ lifecycle: { hook: 'poststop' } }),
  }, { init: { ms: 30 }, main: { ms: 100 }, after: { ms: 10 }, stop: { ms: 10 } })
  const u = await until((u) => u.clientStatus === 'complete', 'complete')
  const log = driver.log
  const at = (s: string) => log.indexOf(s)
  t.true(at('start side') >= 0 && at('start init') >= 0)
  t.true(at('exit init 0') < at('start main'), log.join(', '))
  t.true(at('start main') < at('start after'), log.join(', '))
  t.true(at('exit main 0') < at('exit side 143'), 'the sidecar is stopped after the main task')
  t.true(at('exit side 143') < at('start stop'), 'poststop runs after everything else')
  t.is(u.clientDescription, 'all tasks finished')
  t.false(Object.values(u.taskStates).some((s) => s.failed))
})

test('service: running once main tasks and sidecars run; a non-essential task may finish or fail', async (t) => {
  const { until } = await runGroup(t, 'service', {
    main: task(),
    ok: task({ essential: false }),
    bad: task({ essential: false }),
  }, { ok: { ms: 10 }, bad: { ms: 10, code: 3 } })
  const u = await until((u) => u.taskStates.ok?.state === 'dead' && u.taskStates.bad?.state === 'dead' && u.clientStatus === 'running', 'running')
  t.false(u.taskStates.ok!.failed)
  t.is(u.taskStates.ok!.events.at(-1)!.type, 'Completed')
  t.true(u.taskStates.bad!.failed)
  t.is(u.taskStates.main!.state, 'running')
})

test('an essential task failing stops its siblings and fails the allocation; tasks waiting on it are not started', async (t) => {
  const { driver, until } = await runGroup(t, 'service', {
    main: task(),
    db: task({ check: [{ type: 'command', command: 'true', interval: '1s' }] }),
    web: task({ depends_on: [{ task: 'main', condition: 'START' }, { task: 'db', condition: 'HEALTHY' }] }),
  }, { db: { ms: 20, code: 1 } })
  // db fails before its first check could pass.
  const u = await until((u) => u.clientStatus === 'failed' && Object.values(u.taskStates).every((s) => s.state === 'dead'), 'failed')
  t.is(u.clientDescription, 'task "db" failed')
  t.is(u.taskStates.main!.events.at(-1)!.type, 'Killed')
  t.false(driver.log.includes('start web'))
  t.regex(u.taskStates.web!.events.at(-1)!.message, /task not started: sibling task "db" failed|waited for task "db"/)
})

test('depends_on SUCCESS on a task that fails: the dependent is never started (Dependency Failed)', async (t) => {
  const { driver, until } = await runGroup(t, 'service', {
    main: task(),
    migrate: task({ essential: false }),
    app: task({ depends_on: [{ task: 'migrate', condition: 'SUCCESS' }] }),
  }, { migrate: { ms: 10, code: 2 } })
  const u = await until((u) => u.clientStatus === 'failed', 'failed')
  t.deepEqual(u.taskStates.app!.events.map((e) => [e.type, e.message]), [['Dependency Failed', 'waited for task "migrate" (SUCCESS): did not complete successfully']])
  t.false(driver.log.includes('start app'))
  t.is(u.clientDescription, 'task "app" failed')
})

test('depends_on COMPLETE waits for the exit, whatever its code; stop kills tasks that never started', async (t) => {
  const { runner, driver, until } = await runGroup(t, 'service', {
    main: task(),
    seed: task({ essential: false }),
    app: task({ depends_on: [{ task: 'seed', condition: 'COMPLETE' }] }),
    hold: task({ essential: false }),
    never: task({ depends_on: [{ task: 'hold', condition: 'COMPLETE' }], essential: false }),
  }, { seed: { ms: 30, code: 5 } })
  await until((u) => u.taskStates.app?.state === 'running', 'app running')
  t.true(driver.log.indexOf('exit seed 5') < driver.log.indexOf('start app'))
  await runner.stop('job stopped')
  const u = await until((u) => u.clientStatus === 'complete', 'complete')
  t.deepEqual(u.taskStates.never!.events.map((e) => e.type), ['Killed'])
  t.is(u.clientDescription, 'job stopped')
})

test('no task starts before the network hook\'s setup is over, even when setup notes a task event meanwhile', async (t) => {
  let setupDone = Infinity
  const network: AllocNetworkHooks = {
    wantsGroupNamespace: () => false,
    setup: async (ctx) => {
      // A task event folds the task states: it must not start the tasks early (their upstream listeners do not exist yet).
      ctx.note('main', 'Upstream', 'upstream service nosuch unknown')
      await new Promise((r) => setTimeout(r, 100))
      setupDone = Date.now()
    },
    teardown: () => undefined,
  }
  const { driver, until } = await runGroup(t, 'service', { main: task(), side: task() }, {}, network)
  const u = await until((u) => u.clientStatus === 'running', 'running')
  t.deepEqual(driver.log.sort(), ['start main', 'start side'])
  for (const name of ['main', 'side']) t.true(u.taskStates[name]!.startedAt! >= setupDone, `${name} started before setup was over`)
})
