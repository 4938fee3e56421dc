// The exec driver with real processes, log files and a simulated agent restart.
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test, { type ExecutionContext } from 'ava'
import { DriverError, type TaskHandle, type TaskStartSpec } from '../../src/runtime/driver.ts'
import { ExecDriver } from '../../src/runtime/exec.ts'
import { processGroupMembers, readProcStat } from '../../src/runtime/proc.ts'
import { eventually, execSpec, readAll, tempDir, uniqueId } from '../helpers/tasks.ts'

interface Fixture {
  driver: ExecDriver
  stateDir: string
  allocDir: string
  nodeId: string
  spec: (command: string, args?: string[], name?: string) => TaskStartSpec
  start: (spec: TaskStartSpec) => Promise<TaskHandle>
}

async function fixture(t: ExecutionContext): Promise<Fixture> {
  const root = await tempDir(t, 'shoal-exec-')
  const stateDir = join(root, 'state')
  const allocDir = join(root, 'alloc')
  await mkdir(allocDir)
  const driver = new ExecDriver({ stateDir })
  const nodeId = uniqueId('node')
  const allocId = uniqueId('alloc')
  const spec = (command: string, args: string[] = [], name?: string) =>
    execSpec({ command, args }, { allocId, nodeId, allocDir, name, env: { GREETING: 'hello' } })
  const start = async (s: TaskStartSpec) => {
    const handle = await driver.start(s)
    t.teardown(() => driver.destroy(handle))
    return handle
  }
  return { driver, stateDir, allocDir, nodeId, spec, start }
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, `#!/bin/sh\n${body}\n`)
  await chmod(path, 0o755)
  return path
}

test('fingerprint is healthy and says whether cgroup limits apply', async (t) => {
  const { driver } = await fixture(t)
  const fp = await driver.fingerprint()
  t.true(fp.healthy)
  t.is(fp.attributes['driver.exec'], '1')
  t.truthy(fp.attributes['driver.exec.cgroups'])
  t.log(`driver.exec.cgroups = ${fp.attributes['driver.exec.cgroups']}`)
})

test('runs a script in the alloc dir with the task env; exit code and log files', async (t) => {
  const { allocDir, spec, start, driver } = await fixture(t)
  const path = await script(allocDir, 'run.sh', 'echo "$GREETING from $(pwd)"; echo oops >&2; [ -n "$PATH" ] && echo path-set; exit 3')
  const handle = await start(spec('./run.sh'))
  t.is(handle.driver, 'exec')
  t.regex(handle.id, /^\d+$/)
  t.deepEqual(await driver.wait(handle), { exitCode: 3, oomKilled: false })
  t.is(await readFile(join(allocDir, 'logs', 'worker.stdout.0'), 'utf8'), `hello from ${allocDir}\npath-set\n`)
  t.is(await readFile(join(allocDir, 'logs', 'worker.stderr.0'), 'utf8'), 'oops\n')
  t.is(await readAll(await driver.logs(handle, { stream: 'stderr', follow: false })), 'oops\n')
  // Late and concurrent waits agree.
  const again = await Promise.all([driver.wait(handle), driver.wait(handle)])
  t.deepEqual(again, [{ exitCode: 3, oomKilled: false }, { exitCode: 3, oomKilled: false }])
  t.truthy(path)
})

test('the task runs in its own session and process group', async (t) => {
  const { spec, start, driver } = await fixture(t)
  const handle = await start(spec('sleep', ['30']))
  const stat = readProcStat(Number(handle.id))
  t.truthy(stat)
  t.is(stat!.session, Number(handle.id))
  t.is(stat!.pgrp, Number(handle.id))
  await driver.stop(handle, 2000)
})

test('start is idempotent per (alloc, task) and restarts an exited task', async (t) => {
  const { spec, start, driver } = await fixture(t)
  const s = spec('/bin/sh', ['-c', 'echo started; sleep 30'])
  const [a, b] = await Promise.all([start(s), start(s)])
  t.is(a.id, b.id)
  t.is((await start(s)).id, a.id)
  await driver.stop(a, 2000)
  t.like(await driver.wait(a), { exitCode: 143, signal: 15 })
  const c = await start(s)
  t.not(c.id, a.id)
  await eventually(async () => (await readAll(await driver.logs(c, { stream: 'stdout', follow: false }))) === 'started\nstarted\n')
  await driver.stop(c, 2000)
  t.pass()
})

test('stop sends SIGTERM to the process group and the exit reports signal 15', async (t) => {
  const { spec, start, driver } = await fixture(t)
  const handle = await start(spec('/bin/sh', ['-c', 'sleep 300 & sleep 300']))
  const began = Date.now()
  await driver.stop(handle, 5000)
  t.true(Date.now() - began < 2000, `stop took ${Date.now() - began} ms`)
  t.like(await driver.wait(handle), { exitCode: 143, signal: 15, oomKilled: false })
  t.deepEqual(processGroupMembers(Number(handle.id)), [])
  await driver.stop(handle, 1000) // already stopped: no error
})

test('stop escalates to SIGKILL after the timeout, and the exit is still recorded', async (t) => {
  const { spec, start, driver } = await fixture(t)
  const handle = await start(spec('/bin/sh', ['-c', 'trap "" TERM; echo ready; while true; do sleep 1; done']))
  await eventually(async () => (await readAll(await driver.logs(handle, { stream: 'stdout', follow: false }))) === 'ready\n')
  const began = Date.now()
  await driver.stop(handle, 500)
  const took = Date.now() - began
  t.true(took >= 450 && took < 3000, `stop took ${took} ms`)
  t.like(await driver.wait(handle), { exitCode: 137, signal: 9 })
  t.deepEqual(processGroupMembers(Number(handle.id)), [])
})

test('logs: tail counts lines, follow sees appended lines until destroyed', async (t) => {
  const { spec, start, driver } = await fixture(t)
  const body = 'printf "a\\nb\\nc\\n"; printf "err1\\nerr2" >&2; sleep 3; echo d; sleep 1; echo e; sleep 30'
  const handle = await start(spec('/bin/sh', ['-c', body]))
  await eventually(async () => (await readAll(await driver.logs(handle, { stream: 'stdout', follow: false }))) === 'a\nb\nc\n')
  const read = async (stream: 'stdout' | 'stderr', tail?: number) =>
    readAll(await driver.logs(handle, { stream, follow: false, tail }))
  t.is(await read('stdout', 2), 'b\nc\n')
  t.is(await read('stdout', 0), '')
  t.is(await read('stdout', 10), 'a\nb\nc\n')
  t.is(await read('stderr', 1), 'err2')
  t.is(await read('stderr'), 'err1\nerr2')

  const follow = await driver.logs(handle, { stream: 'stdout', follow: true, tail: 1 })
  let seen = ''
  await new Promise<void>((resolve, reject) => {
    follow.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      if (seen.includes('e\n')) resolve()
    })
    follow.on('error', reject)
  })
  t.is(seen, 'c\nd\ne\n')
  const closed = new Promise<void>((resolve) => follow.once('close', () => resolve()))
  follow.destroy()
  await closed
  await driver.stop(handle, 1000)
})

test('logs rotate at max_file_size_mb, keep max_files per stream, and are read (tail, follow) across the files', async (t) => {
  const { spec, start, driver, allocDir } = await fixture(t)
  // 5 bursts of 10,000 lines of 100 bytes (5,000,000 bytes) with pauses; files of 1 MiB, 3 kept.
  t.timeout(120_000)
  const pad = 'x'.repeat(89)
  const line = (i: number) => `${String(i).padStart(9, '0')} ${pad}\n`
  const expected = Array.from({ length: 50_000 }, (_, i) => line(i + 1)).join('')
  const awk = `awk -v b=$b 'BEGIN { for (i = b * 10000 + 1; i <= (b + 1) * 10000; i++) printf "%09d %s\\n", i, "${pad}" }'`
  // A second between bursts keeps the follower (polling every 150 ms) well within the 3 files kept, even on a busy machine.
  const body = `sleep 0.5; for b in 0 1 2 3 4; do ${awk}; echo "burst $b" >&2; sleep 1; done; exit 0`
  const s = spec('/bin/sh', ['-c', body])
  s.task.logs = { maxFiles: 3, maxFileSizeMB: 1 }
  const handle = await start(s)
  const follow = await driver.logs(handle, { stream: 'stdout', follow: true })
  const chunks: Buffer[] = []
  let seen = 0
  const followed = new Promise<void>((resolve, reject) => {
    follow.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      seen += chunk.length
      if (seen >= expected.length) resolve()
    })
    follow.on('error', reject)
  })
  t.deepEqual(await driver.wait(handle), { exitCode: 0, oomKilled: false })
  const late = setTimeout(() => follow.destroy(new Error(`follow read ${seen} of ${expected.length} bytes within 30 s of the exit`)), 30_000)
  await followed
  clearTimeout(late)
  follow.destroy()
  t.is(Buffer.concat(chunks).toString(), expected, 'follow reads every byte once, in order, across the rotations')

  const mib = 1024 * 1024
  const files = (await readdir(join(allocDir, 'logs'))).filter((f) => f.startsWith('worker.stdout')).sort()
  t.deepEqual(files, ['worker.stdout.2', 'worker.stdout.3', 'worker.stdout.4'], 'the oldest files are deleted past max_files')
  const sizes = await Promise.all(files.map(async (f) => (await readFile(join(allocDir, 'logs', f))).length))
  t.deepEqual(sizes, [mib, mib, expected.length - 4 * mib])
  const read = async (tail?: number) => readAll(await driver.logs(handle, { stream: 'stdout', follow: false, tail }))
  t.is(await read(), expected.slice(2 * mib), 'the files kept, oldest first')
  t.is(await read(3), expected.split('\n').slice(-4).join('\n'))
  // A tail reaching back past the newest file's start, through a line split between two files.
  const lastFileLines = (expected.length - 4 * mib) / 100
  t.is(await read(Math.ceil(lastFileLines) + 2), expected.slice(-(Math.ceil(lastFileLines) + 2) * 100))
  t.is(await readAll(await driver.logs(handle, { stream: 'stderr', follow: false })), 'burst 0\nburst 1\nburst 2\nburst 3\nburst 4\n')
})

test('recover after an agent restart finds the task, and wait still gets its exit code', async (t) => {
  const { spec, start, stateDir, nodeId } = await fixture(t)
  const first = await start(spec('/bin/sh', ['-c', 'sleep 1.5; exit 7']))

  // A brand new driver on the same state dir, as after an agent restart.
  const restarted = new ExecDriver({ stateDir })
  const recovered = await restarted.recover(nodeId)
  t.is(recovered.length, 1)
  t.like(recovered[0], { allocId: first.allocId, taskName: 'worker', running: true, handle: { id: first.id, driver: 'exec' } })
  t.deepEqual(await restarted.recover(uniqueId('other-node')), [])
  // Starting it again through the new driver returns the running process.
  t.is((await restarted.start(spec('/bin/sh', ['-c', 'sleep 1.5; exit 7']))).id, first.id)

  const result = await restarted.wait(recovered[0].handle)
  t.deepEqual(result, { exitCode: 7, oomKilled: false })
  const later = await new ExecDriver({ stateDir }).recover(nodeId)
  t.like(later[0], { running: false })
  t.deepEqual(await new ExecDriver({ stateDir }).wait(later[0].handle), { exitCode: 7, oomKilled: false })
})

test('the task outlives the agent process that started it', async (t) => {
  const { stateDir, allocDir, nodeId, driver } = await fixture(t)
  // A separate "agent" process starts the task and exits at once.
  const agent = `
    import { ExecDriver } from ${JSON.stringify(new URL('../../src/runtime/exec.ts', import.meta.url).href)}
    const [stateDir, allocDir, nodeId] = process.argv.slice(1)
    const driver = new ExecDriver({ stateDir })
    const handle = await driver.start({
      allocId: 'outlive', jobId: 'j', group: 'g', nodeId, allocDir, env: {}, ports: [],
      task: { name: 'survivor', driver: 'exec', env: {}, resources: { cpu: 100, memoryMB: 64 }, killTimeoutMs: 1000,
              config: { command: '/bin/sh', args: ['-c', 'sleep 1; echo still here; exit 5'] } },
    })
    console.log(JSON.stringify(handle))
    process.exit(0)
  `
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', agent, stateDir, allocDir, nodeId])
  const started = JSON.parse(stdout) as TaskHandle
  t.teardown(() => driver.destroy(started))
  const [task] = await driver.recover(nodeId)
  t.like(task, { running: true, handle: { id: started.id } })
  t.deepEqual(await driver.wait(task.handle), { exitCode: 5, oomKilled: false })
  t.is(await readAll(await driver.logs(task.handle, { stream: 'stdout', follow: false })), 'still here\n')
})

test('a recovered task can be stopped and its logs followed by the new driver', async (t) => {
  const { spec, start, stateDir, nodeId } = await fixture(t)
  await start(spec('/bin/sh', ['-c', 'echo one; sleep 300']))
  const restarted = new ExecDriver({ stateDir })
  const [task] = await restarted.recover(nodeId)
  await eventually(async () => (await readAll(await restarted.logs(task.handle, { stream: 'stdout', follow: false }))) === 'one\n')
  await restarted.stop(task.handle, 2000)
  t.like(await restarted.wait(task.handle), { exitCode: 143, signal: 15 })
})

test('a command that does not exist or cannot be executed is a DriverError', async (t) => {
  const { spec, driver, allocDir, stateDir, nodeId } = await fixture(t)
  const absent = await t.throwsAsync(driver.start(spec('/bin/nope')), { instanceOf: DriverError })
  t.is(absent!.message, 'command "/bin/nope" not found')
  t.false(absent!.recoverable)
  const notInPath = await t.throwsAsync(driver.start(spec('shoal-no-such-command')), { instanceOf: DriverError })
  t.regex(notInPath!.message, /^command "shoal-no-such-command" not found in PATH/)
  await writeFile(join(allocDir, 'data.txt'), 'not a program\n')
  const notExec = await t.throwsAsync(driver.start(spec('./data.txt')), { instanceOf: DriverError })
  t.is(notExec!.message, 'command "./data.txt" is not executable')
  t.deepEqual(await driver.recover(nodeId), [])
  t.deepEqual(await readdir(stateDir).catch(() => []), [])
})

test('destroy kills the task and removes its handle but keeps the logs', async (t) => {
  const { spec, driver, allocDir, stateDir, nodeId } = await fixture(t)
  const handle = await driver.start(spec('/bin/sh', ['-c', 'echo kept; sleep 300']))
  await eventually(async () => (await readFile(join(allocDir, 'logs', 'worker.stdout.0'), 'utf8')) === 'kept\n')
  await driver.destroy(handle)
  t.deepEqual(processGroupMembers(Number(handle.id)), [])
  t.deepEqual(await driver.recover(nodeId), [])
  t.deepEqual(await readdir(stateDir), [])
  t.is(await readFile(join(allocDir, 'logs', 'worker.stdout.0'), 'utf8'), 'kept\n')
  t.truthy((await driver.wait(handle)).error)
  await driver.destroy(handle) // gone: no error
  await driver.stop(handle, 100)
})

test('cgroup v2 limits are written and joined when the hierarchy allows it', async (t) => {
  // A directory that looks like a cgroup v2 root: the driver's writes land in plain files.
  const root = await tempDir(t, 'shoal-cgroup-')
  await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n')
  const { spec, allocDir, stateDir } = await fixture(t)
  const driver = new ExecDriver({ stateDir, cgroupRoot: root })
  t.is((await driver.fingerprint()).attributes['driver.exec.cgroups'], 'v2')
  const s = spec('/bin/sh', ['-c', 'exit 0'])
  const handle = await driver.start(s)
  t.teardown(() => driver.destroy(handle))
  t.deepEqual(await driver.wait(handle), { exitCode: 0, oomKilled: false })
  const dir = join(root, 'shoal', `${encodeURIComponent(s.allocId)}+worker`)
  t.is(await readFile(join(dir, 'memory.max'), 'utf8'), String(64 * 1024 * 1024))
  t.is(await readFile(join(dir, 'cpu.weight'), 'utf8'), String(1 + Math.floor((98 * 9999) / 262142)))
  t.is((await readFile(join(dir, 'cgroup.procs'), 'utf8')).trim(), handle.id)
  t.truthy(allocDir)
})

test('fingerprint reports cgroups unavailable on a host without cgroup v2', async (t) => {
  const root = await tempDir(t, 'shoal-nocgroup-')
  const driver = new ExecDriver({ stateDir: join(root, 'state'), cgroupRoot: root })
  const fp = await driver.fingerprint()
  t.true(fp.healthy)
  t.regex(fp.attributes['driver.exec.cgroups'], /^unavailable: no cgroup v2 hierarchy/)
})
