// `alloc logs` through the API (stdout, stderr, tail, follow) for a docker and
// an exec task sharing one allocation; the exec driver run by a real agent.
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, SHOAL, tempDir } from '../harness/agent.ts'

const LOOP = 'i=0; while true; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done'
const jobFile = {
  job: { chatter: { group: { g: { count: 1, restart: { attempts: 1, interval: '1m', delay: '1s' }, task: {
    box: { driver: 'docker', config: { image: 'shoal-test/busybox:latest', command: '/bin/sh', args: ['-c', LOOP] }, resources: { cpu: 50, memory: 16 } },
    proc: { driver: 'exec', config: { command: '/bin/sh', args: ['-c', 'echo hello from $SHOAL_TASK_NAME; while true; do echo tick; sleep 0.2; done'] }, resources: { cpu: 50, memory: 16 } },
  } } } } },
}

test('alloc logs shows stdout, stderr, tail and follows new lines; exec tasks run and stop with the job', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('logs')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-logs', bind: '127.0.0.23', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'chatter.json')
  await writeFile(file, JSON.stringify(jobFile))
  const run = await runCli(['job', 'run', file], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr + agent.output)

  const allocs = await agent.get<{ id: string; desiredStatus: string }[]>('/v1/job/chatter/allocations')
  const id = allocs[0]!.id.slice(0, 8)
  const logs = (...args: string[]) => runCli(['alloc', 'logs', id, ...args], agent.address)

  const out = await eventually(async () => { const r = await logs('box'); return /out 2/.test(r.stdout) && r }, { what: 'stdout lines' })
  t.is(out.code, 0)
  t.notRegex(out.stdout, /err/, 'stdout only')
  const err = await logs('box', '--stderr')
  t.regex(err.stdout, /^err 0$/m)
  t.notRegex(err.stdout, /out/)
  const tail = await logs('box', '--tail', '1')
  t.is(tail.stdout.trim().split('\n').length, 1)
  const exec = await logs('proc')
  t.regex(exec.stdout, /^hello from proc$/m)
  t.regex(exec.stdout, /^tick$/m)

  const ambiguous = await logs()
  t.is(ambiguous.code, 1)
  t.regex(ambiguous.stderr, /task: allocation has tasks box, proc; name one/)
  const unknown = await logs('nope')
  t.not(unknown.code, 0)
  t.regex(unknown.stderr, /task "nope" not found/)

  // -f keeps printing lines written after it started.
  const follow = spawn(SHOAL, ['alloc', 'logs', id, 'box', '-f', '--tail', '1'], { env: { ...process.env, SHOAL_ADDR: agent.address } })
  let followed = ''
  follow.stdout.on('data', (d: Buffer) => (followed += d))
  const first = await eventually(async () => Number(/out (\d+)/.exec(followed)?.[1] ?? NaN) + 1 || false, { what: 'first followed line' })
  await eventually(async () => {
    const nums = [...followed.matchAll(/out (\d+)/g)].map((m) => Number(m[1]))
    return nums.length >= 4 && nums.at(-1)! >= first + 3
  }, { what: 'followed lines keep coming' })
  follow.kill()

  // The exec task is a real process: gone after job stop, like the container.
  const detail = await agent.get<{ taskStates: Record<string, { state: string }> }>(`/v1/allocation/${allocs[0]!.id}`)
  t.is(detail.taskStates.proc!.state, 'running')
  const stop = await runCli(['job', 'stop', 'chatter'], agent.address)
  t.is(stop.code, 0, stop.stderr)
  const after = await agent.get<{ clientStatus: string; taskStates: Record<string, { state: string }> }>(`/v1/allocation/${allocs[0]!.id}`)
  t.is(after.clientStatus, 'complete')
  t.is(after.taskStates.proc!.state, 'dead')
  t.deepEqual(await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } }), [])
  const ps = await runPs()
  t.notRegex(ps, /hello from \$SHOAL_TASK_NAME/, 'no exec process left')
})

function runPs(): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('ps', ['-eo', 'args'])
    let s = ''
    p.stdout.on('data', (d: Buffer) => (s += d))
    p.on('close', () => resolve(s))
  })
}

// About 1 MB/s of numbered 100-byte lines: files of 1 MB rotate every second or so.
const PAD = 'x'.repeat(89)
const FLOOD = `awk 'BEGIN { for (i = 1; ; i++) { printf "%09d ${PAD}\\n", i; if (i % 5000 == 0) { fflush(); system("sleep 0.5") } } }'`

/** The numbers of the complete lines of `text`; fails unless they follow each other. */
function consecutive(t: ExecutionContext, text: string, what: string): number[] {
  const lines = text.split('\n').filter((l) => /^\d{9} x{89}$/.test(l))
  const nums = lines.map((l) => Number(l.slice(0, 9)))
  const gap = nums.findIndex((n, i) => i > 0 && n !== nums[i - 1]! + 1)
  t.is(gap, -1, `${what}: line ${nums[gap - 1]} is followed by ${nums[gap]}`)
  return nums
}

test('alloc logs reads across rotated files: --tail, all of what is kept, -f through rotations', async (t) => {
  const dir = await tempDir('logs-rotate')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-logs-rotate', bind: '127.0.5.23', httpPort: await freePort() })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'flood'], agent.address).catch(() => undefined)
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'flood.json')
  await writeFile(file, JSON.stringify({ job: { flood: { group: { g: { task: {
    flood: { driver: 'exec', config: { command: '/bin/sh', args: ['-c', FLOOD] }, resources: { cpu: 50, memory: 32 }, logs: { max_files: 2, max_file_size_mb: 1 } },
  } } } } } }))
  const run = await runCli(['job', 'run', file], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr + agent.output)
  const [alloc] = await agent.get<{ id: string }[]>('/v1/job/flood/allocations')
  const logs = (...args: string[]) => runCli(['alloc', 'logs', alloc!.id.slice(0, 8), ...args], agent.address)

  // Past two rotations: the first lines are gone with the deleted file.
  const all = await eventually(async () => {
    const r = await logs()
    // The first complete line (the output may start with the end of a line cut by a rotation).
    return r.code === 0 && Number(/^(\d{9}) x{89}$/m.exec(r.stdout)?.[1] ?? 1) > 1 && r
  }, { what: 'the oldest log file deleted', timeoutMs: 60_000 })
  const kept = consecutive(t, all.stdout, 'all the logs kept')
  t.true(all.stdout.length <= 2 * 1024 * 1024, `at most max_files × max_file_size_mb (${all.stdout.length} bytes)`)
  t.true(kept.length >= 10_000, `more than one file's worth (${kept.length} lines)`)

  const tail = await logs('--tail', '3')
  const last = consecutive(t, tail.stdout, '--tail 3')
  t.is(last.length, 3)
  t.true(last[0]! >= kept.at(-1)! - 2)

  // -f from the last line on, across at least one rotation (over 10,000 lines = 1 MB).
  const follow = spawn(SHOAL, ['alloc', 'logs', alloc!.id.slice(0, 8), '-f', '--tail', '1'], { env: { ...process.env, SHOAL_ADDR: agent.address } })
  let followed = ''
  follow.stdout.on('data', (d: Buffer) => (followed += d))
  await eventually(async () => followed.length > 1_200_000, { what: 'more than a file followed', timeoutMs: 60_000 })
  follow.kill()
  const nums = consecutive(t, followed, '-f')
  t.true(nums.length > 12_000)
})
