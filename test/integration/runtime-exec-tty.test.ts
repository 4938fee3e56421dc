// shoal alloc exec -i -t: the command runs on a terminal (docker exec Tty; exec driver:
// a pty from util-linux script) with the CLI's window size, live input and its exit
// code, through the agent of another node. Driven non-interactively: util-linux
// `script` gives the CLI a pseudo-terminal of its own, whose input is piped.
import test from 'ava'
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, SHOAL, tempDir, type CliResult } from '../harness/agent.ts'

/** `command` run by sh on a pseudo-terminal of 33 rows × 101 columns, `input` typed into it. */
function onTerminal(command: string, input: string, address: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn('script', ['-qfec', `stty rows 33 cols 101; ${command}`, '/dev/null'], { env: { ...process.env, SHOAL_ADDR: address } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d))
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    // Typed a moment after the session opened, as a person would.
    setTimeout(() => p.stdin.write(input), 1500)
  })
}

test('alloc exec -i -t runs a shell on a terminal in docker and exec tasks, with the window size and exit code, via another node', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('exec-tty')
  const bind = async (host: string) => `${host}:${await freePort(host)}`
  const a = await AgentProcess.start({ dataDir: join(dir, 'a'), name: 'tty-a', bind: await bind('127.0.5.31'), httpPort: await freePort(), dev: false })
  const b = await AgentProcess.start({ dataDir: join(dir, 'b'), name: 'tty-b', bind: await bind('127.0.5.32'), httpPort: await freePort(), dev: false, join: [a.options.bind] })
  const nodeB = (await b.get<{ nodeId: string }>('/v1/agent/self')).nodeId
  t.teardown(async () => {
    await runCli(['job', 'stop', 'tty'], a.address, 30_000).catch(() => undefined)
    // Exec tasks outlive their agent: let the stop reach them before the agents go.
    await eventually(async () => (await a.get<{ clientStatus: string }[]>('/v1/job/tty/allocations')).every((x) => x.clientStatus !== 'running'),
      { what: 'the tty job stopped', timeoutMs: 20_000 }).catch(() => undefined)
    for (const x of [b, a]) await x.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${nodeB}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  await eventually(async () => (await a.get<{ status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 2, { what: 'both nodes ready', timeoutMs: 30_000 })
  const file = join(dir, 'tty.json')
  await writeFile(file, JSON.stringify({ job: { tty: { group: { g: {
    constraint: [{ attribute: '${node.name}', value: 'tty-b' }],
    task: {
      box: { driver: 'docker', config: { image: TEST_IMAGE, command: '/bin/sleep', args: ['600'] }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s' },
      proc: { driver: 'exec', config: { command: '/bin/sleep', args: ['600'] }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s' },
    },
  } } } } }))
  const run = await runCli(['job', 'run', file], a.address)
  t.is(run.code, 0, run.stdout + run.stderr)
  const [alloc] = await a.get<{ id: string }[]>('/v1/job/tty/allocations')
  const id = alloc!.id.slice(0, 8)

  for (const task of ['box', 'proc']) {
    const r = await onTerminal(`${SHOAL} alloc exec -i -t ${id} ${task} -- sh`, 'tty; stty size; test -t 0 && echo "stdin is a terminal"; exit 7\n', a.address)
    // Lines end in \r\r\n: the task's terminal and the CLI's each turn \n into \r\n; the shell may print its prompt first.
    t.is(r.code, 7, `${task}: ${r.stdout}${r.stderr}`)
    t.regex(r.stdout, /^(?:[#$] )?\/dev\/pts\/\d+\r*$/m, `${task}: tty names a pseudo-terminal`)
    t.regex(r.stdout, /^33 101\r*$/m, `${task}: the CLI's window size`)
    t.regex(r.stdout, /^stdin is a terminal\r*$/m, task)
  }

  // -t without -i: output on a terminal, no input.
  const noInput = await onTerminal(`${SHOAL} alloc exec -t ${id} proc -- sh -c 'test -t 1 && echo "stdout is a terminal"; exit 3'`, '', a.address)
  t.is(noInput.code, 3, noInput.stdout + noInput.stderr)
  t.regex(noInput.stdout, /stdout is a terminal/)

  // -i -t with input that is not a terminal: a clear error, as docker gives.
  const piped = await runCli(['alloc', 'exec', '-i', '-t', id, 'proc', '--', 'sh'], a.address)
  t.is(piped.code, 1)
  t.regex(piped.stderr, /-t: standard input is not a terminal/)
  const gone = await onTerminal(`${SHOAL} alloc exec -i -t ${id} nope -- sh`, '', a.address)
  t.not(gone.code, 0)
  t.regex(gone.stdout + gone.stderr, /task "nope" not found/)
})
