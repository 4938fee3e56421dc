// shoal alloc exec: a command in a running task (docker exec; exec driver with the
// task's env and cwd), its output and exit code carried through the API; stdin
// with -i; an allocation on another node is reached through that node's agent.
import test from 'ava'
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, SHOAL, tempDir, type CliResult } from '../harness/agent.ts'

const sleeper = (driver: string) => driver === 'docker'
  ? { driver, config: { image: TEST_IMAGE, command: '/bin/sleep', args: ['600'] }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s' }
  : { driver, config: { command: '/bin/sleep', args: ['600'] }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s', env: { GREETING: 'hello' } }

/** Runs the CLI with `input` on its stdin. */
function cliWithStdin(args: string[], address: string, input: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(SHOAL, args, { env: { ...process.env, SHOAL_ADDR: address } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d))
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    p.stdin.end(input)
  })
}

async function runningAlloc(agent: AgentProcess, job: string): Promise<string> {
  return eventually(async () => {
    const [a] = await agent.get<{ id: string; clientStatus: string }[]>(`/v1/job/${job}/allocations`)
    return a?.clientStatus === 'running' && a.id
  }, { what: `allocation of ${job} running`, timeoutMs: 30_000 })
}

test('alloc exec runs commands in docker and exec tasks with output and exit code; -i sends stdin; errors are clear', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('exec')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-exec', bind: '127.0.0.44', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'ex'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'ex.json')
  await writeFile(file, JSON.stringify({ job: { ex: { group: { g: { task: { box: sleeper('docker'), proc: sleeper('exec') } } } } } }))
  t.is((await runCli(['job', 'run', file, '--detach'], agent.address)).code, 0)
  const id = (await runningAlloc(agent, 'ex')).slice(0, 8)
  const exec = (...args: string[]) => runCli(['alloc', 'exec', ...args], agent.address)

  const r = await exec(id, 'box', '--', 'sh', '-c', 'echo hi; echo oops >&2; exit 3')
  t.is(r.code, 3, r.stderr)
  t.is(r.stdout, 'hi\n')
  t.is(r.stderr, 'oops\n')
  const ok = await exec(id, 'box', '--', 'cat', '/www/index.html')
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /Hello from Shoal/)

  // The exec driver: the task's environment and working directory (the allocation directory).
  const p = await exec(id, 'proc', '--', 'sh', '-c', 'echo "$GREETING $SHOAL_TASK_NAME $(pwd)"; exit 5')
  t.is(p.code, 5, p.stderr)
  t.regex(p.stdout, new RegExp(`^hello proc .*/allocs/${(await agent.get<{ id: string }[]>('/v1/job/ex/allocations'))[0]!.id}\\n$`))

  // -i: stdin read to its end and given to the command.
  const cat = await cliWithStdin(['alloc', 'exec', '-i', id, 'box', '--', 'wc', '-c'], agent.address, 'twelve bytes')
  t.is(cat.code, 0, cat.stderr)
  t.is(cat.stdout.trim(), '12')
  const catExec = await cliWithStdin(['alloc', 'exec', '-i', id, 'proc', '--', 'cat'], agent.address, 'from stdin\n')
  t.is(catExec.stdout, 'from stdin\n')

  const slow = await exec(id, 'box', '--timeout', '500ms', '--', 'sleep', '30')
  t.is(slow.code, 124)
  t.regex(slow.stderr, /did not finish within 500ms/)

  const missing = await exec(id, 'proc', '--', 'no-such-program')
  t.is(missing.code, 1)
  t.regex(missing.stderr, /^Error: command "no-such-program" not found in PATH/m)
  const noDash = await exec(id, 'box')
  t.is(noDash.code, 1)
  t.regex(noDash.stderr, /give the command after "--"/)
  const which = await exec(id, '--', 'true')
  t.is(which.code, 1)
  t.regex(which.stderr, /task: allocation has tasks box, proc; name one/)
  const unknown = await exec(id, 'nope', '--', 'true')
  t.is(unknown.code, 4)
  t.regex(unknown.stderr, /task "nope" not found/)
  const noAlloc = await exec('ffffffff', '--', 'true')
  t.is(noAlloc.code, 4)
  t.regex(noAlloc.stderr, /allocation "ffffffff" not found/)
})

test('alloc exec and stats of an allocation on another node go through that node\'s agent', async (t) => {
  const dir = await tempDir('exec-proxy')
  const bind = async (host: string) => `${host}:${await freePort(host)}`
  const a = await AgentProcess.start({ dataDir: join(dir, 'a'), name: 'exec-a', bind: await bind('127.0.0.45'), httpPort: await freePort(), dev: false })
  const b = await AgentProcess.start({ dataDir: join(dir, 'b'), name: 'exec-b', bind: await bind('127.0.0.46'), httpPort: await freePort(), dev: false, join: [a.options.bind] })
  t.teardown(async () => {
    await runCli(['job', 'stop', 'far'], a.address, 30_000).catch(() => undefined)
    for (const x of [b, a]) await x.kill()
    await rm(dir, { recursive: true, force: true })
  })
  await eventually(async () => (await a.get<{ name: string; status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 2, { what: 'both nodes ready', timeoutMs: 30_000 })
  const file = join(dir, 'far.json')
  await writeFile(file, JSON.stringify({ job: { far: { group: { g: {
    constraint: [{ attribute: '${node.name}', value: 'exec-b' }],
    task: { proc: sleeper('exec') },
  } } } } }))
  const run = await runCli(['job', 'run', file, '--detach'], a.address)
  t.is(run.code, 0, run.stdout + run.stderr)
  const id = await runningAlloc(a, 'far')
  const r = await runCli(['alloc', 'exec', id.slice(0, 8), '--', 'sh', '-c', 'echo "on $SHOAL_NODE_ID"; exit 2'], a.address)
  t.is(r.code, 2, r.stderr)
  const nodeB = (await b.get<{ nodeId: string }>('/v1/agent/self')).nodeId
  t.is(r.stdout, `on ${nodeB}\n`)
  // Stats too come from the allocation's node.
  const stats = await a.get<{ tasks: Record<string, { memory?: { rssBytes: number } }> }>(`/v1/client/allocation/${id}/stats`)
  t.true(stats.tasks.proc!.memory!.rssBytes > 0, JSON.stringify(stats))
})
