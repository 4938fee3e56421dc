// `alloc logs` through the API (stdout, stderr, tail, follow) for a docker and
// an exec task sharing one allocation; the exec driver run by a real agent.
import test from 'ava'
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
