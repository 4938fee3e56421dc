// The scheduler on real agents with --meta racks (issue #5): spread over ${meta.rack}
// evenly and to target percentages, a constraint that excludes a rack, allocations of a
// killed node placed on the others, and a job blocked for capacity (a static port taken
// on every node) that starts when a node joins.
import test from 'ava'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocStub { id: string; nodeName: string; desiredStatus: string; clientStatus: string }

const sleeper = { driver: 'exec', config: { command: '/bin/sleep', args: ['300'] }, resources: { cpu: 10, memory: 8 }, kill_timeout: '1s' }
const job = (id: string, group: Record<string, unknown>) => ({ job: { [id]: { group: { g: { task: { t: sleeper }, ...group } } } } })

/** Running allocations of `jobId` per node name. */
async function perNode(via: AgentProcess, jobId: string): Promise<Record<string, number>> {
  const allocs = await via.get<AllocStub[]>(`/v1/job/${jobId}/allocations`)
  const counts: Record<string, number> = {}
  for (const a of allocs) if (a.desiredStatus === 'run' && a.clientStatus === 'running') counts[a.nodeName] = (counts[a.nodeName] ?? 0) + 1
  return counts
}

test('spread over ${meta.rack} (even and with targets), a constraint excluding a rack, a killed node, a blocked job unblocked by a joining node', async (t) => {
  const dir = await tempDir('spread')
  const hosts = ['127.0.5.41', '127.0.5.42', '127.0.5.43', '127.0.5.44']
  const racks = ['a', 'b', 'c', 'c']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const agents: AgentProcess[] = []
  t.teardown(async () => {
    const live = agents.find((a) => !a.exited)
    for (const id of ['even', 'targeted', 'not-a', 'ported']) if (live) await runCli(['job', 'stop', id], live.address, 30_000).catch(() => undefined)
    for (const a of agents) await a.kill()
    // Exec tasks outlive their agent (the killed one's too): end them by the pids in the drivers' handle files.
    for (const [i] of agents.entries()) {
      const stateDir = join(dir, `r${i}`, 'exec')
      for (const f of await readdir(stateDir).catch(() => [] as string[])) {
        if (!f.endsWith('.json')) continue
        const { pid } = JSON.parse(await readFile(join(stateDir, f), 'utf8')) as { pid: number }
        try {
          process.kill(-pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
    await rm(dir, { recursive: true, force: true })
  })
  const start = async (i: number) => {
    const agent = await AgentProcess.start({
      dataDir: join(dir, `r${i}`), name: `rack-${racks[i]}${i === 3 ? '2' : ''}`, bind: binds[i]!, httpPort: await freePort(), dev: false,
      extraArgs: ['--meta', `rack=${racks[i]}`], ...(i > 0 ? { join: [binds[0]!] } : {}),
    })
    agents.push(agent)
    return agent
  }
  const first = await start(0)
  await start(1)
  await start(2)
  await eventually(async () => (await first.get<{ status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 3, { what: '3 nodes ready', timeoutMs: 30_000 })
  const run = async (id: string, group: Record<string, unknown>, via = first) => {
    const file = join(dir, `${id}.json`)
    await writeFile(file, JSON.stringify(job(id, group)))
    return runCli(['job', 'run', file], via.address)
  }

  // Even spread: 6 allocations, 2 per rack.
  const even = await run('even', { count: 6, spread: [{ attribute: '${meta.rack}' }] })
  t.is(even.code, 0, even.stdout + even.stderr)
  t.deepEqual(await perNode(first, 'even'), { 'rack-a': 2, 'rack-b': 2, 'rack-c': 2 })

  // Targets: 10 allocations, 50 % / 30 % / 20 %.
  const targeted = await run('targeted', {
    count: 10, spread: [{ attribute: '${meta.rack}', weight: 100, target: [{ value: 'a', percent: 50 }, { value: 'b', percent: 30 }, { value: 'c', percent: 20 }] }],
  })
  t.is(targeted.code, 0, targeted.stdout + targeted.stderr)
  t.deepEqual(await perNode(first, 'targeted'), { 'rack-a': 5, 'rack-b': 3, 'rack-c': 2 })

  // A constraint keeps rack a out, whatever the spread would like.
  const notA = await run('not-a', { count: 4, constraint: [{ attribute: '${meta.rack}', operator: '!=', value: 'a' }], spread: [{ attribute: '${meta.rack}' }] })
  t.is(notA.code, 0, notA.stdout + notA.stderr)
  t.deepEqual(await perNode(first, 'not-a'), { 'rack-b': 2, 'rack-c': 2 })

  // kill -9 rack c: its allocations of "even" run on racks a and b.
  const rackC = agents[2]!
  await rackC.kill('SIGKILL')
  await eventually(async () => {
    const counts = await perNode(first, 'even')
    return counts['rack-c'] === undefined && (counts['rack-a'] ?? 0) + (counts['rack-b'] ?? 0) === 6 && counts
  }, { what: 'the allocations of rack c running on racks a and b', timeoutMs: 30_000 })
  t.pass('replaced on the remaining racks')
  // "not-a" cannot move to rack a: its lost allocations wait.
  await eventually(async () => (await perNode(first, 'not-a'))['rack-b'] === 4, { what: 'not-a all on rack b', timeoutMs: 30_000 })

  // Capacity: static port 7001 on each node; 3 allocations and 2 nodes alive → one blocked.
  const port = await run('ported', { count: 3, network: { port: { p: { static: 7001 } } } })
  t.is(port.code, 2, port.stdout + port.stderr)
  t.regex(port.stdout, /1 allocation\(s\) not placed/)
  t.regex(port.stdout, /port 7001/)
  // A new node in rack c joins: the blocked allocation starts there.
  await start(3)
  await eventually(async () => {
    const counts = await perNode(first, 'ported')
    return counts['rack-c2'] === 1 && (counts['rack-a'] ?? 0) + (counts['rack-b'] ?? 0) === 2 && counts
  }, { what: 'the blocked allocation running on the joining node', timeoutMs: 30_000 })
  t.pass('unblocked by the joining node')
})
