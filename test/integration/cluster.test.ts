// Five real agents formed through a chain of joins: membership, convergence,
// self-healing voters under kill -9, and the scheduler on a real cluster:
// constraints, rescheduling off a dead node, a blocked job that starts when a
// node that fits joins.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface MemberView { name: string; status: string; role: string }
interface Self { raft: { applied: number; role: string }; stateIndex: number }
interface AllocStub { id: string; name: string; nodeName: string; desiredStatus: string; clientStatus: string }

const MARK = `shoal-cluster-test-${process.pid}`
const execJob = (id: string, count: number, constraint: object[]) => ({
  job: { [id]: { group: { g: { count, constraint, restart: { attempts: 0, interval: '1m', delay: '1s' }, task: {
    t: { driver: 'exec', config: { command: '/bin/sh', args: ['-c', `echo ${MARK}; exec sleep 600`] }, resources: { cpu: 20, memory: 8 } },
  } } } } },
})

test('5 agents: chain of joins, convergence, voters heal after kill -9, rescheduling, constraints, blocked job unblocked by a joining node', async (t) => {
  const dir = await tempDir('cluster')
  const hosts = ['127.0.0.91', '127.0.0.92', '127.0.0.93', '127.0.0.94', '127.0.0.95', '127.0.0.96']
  const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
  const zone = (i: number) => (i < 3 ? 'z1' : 'z2')
  const opts = await Promise.all(hosts.slice(0, 5).map(async (_, i) => ({
    dataDir: join(dir, `n${i + 1}`), name: `n${i + 1}`, bind: binds[i]!, httpPort: await freePort(), dev: false,
    extraArgs: ['--meta', `zone=${zone(i)}`], ...(i > 0 ? { join: [binds[i - 1]!] } : {}),
  })))
  const agents: AgentProcess[] = []
  t.teardown(async () => {
    for (const a of agents) await a.kill()
    try { execFileSync('pkill', ['-f', MARK]) } catch { /* none left */ }
    await rm(dir, { recursive: true, force: true })
  })
  for (const o of opts) agents.push(await AgentProcess.start(o)) // each joins through the previous one
  const alive = () => agents.filter((a) => !a.exited)
  const members = (via: AgentProcess) => via.get<MemberView[]>('/v1/members')
  const roles = async (via: AgentProcess) => (await members(via)).filter((m) => m.status === 'alive' && (m.role === 'leader' || m.role === 'voter')).length

  await eventually(async () => {
    for (const a of agents) if ((await members(a)).filter((m) => m.status === 'alive').length !== 5) return false
    return (await roles(agents[0]!)) === 3
  }, { what: 'every agent sees 5 alive members, 3 of them voters', timeoutMs: 30_000 })

  // Writes through every agent; every FSM converges to the same index.
  for (const [i, a] of agents.entries()) t.is((await runCli(['var', 'put', `conv/${i}`, 'x'], a.address)).code, 0)
  await eventually(async () => {
    const idx = await Promise.all(agents.map(async (a) => (await a.get<Self>('/v1/agent/self')).stateIndex))
    return new Set(idx).size === 1 && idx
  }, { what: 'all FSMs at the same index' })

  // Constraints on a real cluster: two allocations on distinct z1 nodes.
  const file = join(dir, 'zoned.json')
  await writeFile(file, JSON.stringify(execJob('zoned', 2, [{ attribute: '${meta.zone}', value: 'z1' }, { operator: 'distinct_hosts' }])))
  const run = await runCli(['job', 'run', file], agents[4]!.address)
  t.is(run.code, 0, run.stdout + run.stderr)
  const placed = (await agents[0]!.get<AllocStub[]>('/v1/job/zoned/allocations')).filter((a) => a.desiredStatus === 'run')
  t.is(placed.length, 2)
  t.is(new Set(placed.map((a) => a.nodeName)).size, 2)
  for (const a of placed) t.true(['n1', 'n2', 'n3'].includes(a.nodeName), a.nodeName)

  // kill -9 the node of one allocation (a voter if possible): it is marked down, the
  // allocation replaced on the remaining z1 node, and the voter set heals.
  const victimName = placed.map((a) => a.nodeName).find((n) => n !== 'n1') ?? placed[0]!.nodeName
  const victim = agents.find((a) => a.options.name === victimName)!
  const observer = agents.find((a) => a !== victim && a.options.name !== 'n1') ?? agents[4]!
  const killedAt = Date.now()
  await victim.kill('SIGKILL')
  await eventually(async () => (await members(observer)).find((m) => m.name === victimName)?.status === 'dead', { what: `${victimName} dead in gossip`, timeoutMs: 15_000 })
  t.log(`${victimName} seen dead after ${Date.now() - killedAt} ms`)
  await eventually(async () => {
    const now = (await observer.get<AllocStub[]>('/v1/job/zoned/allocations')).filter((a) => a.desiredStatus === 'run' && a.clientStatus === 'running')
    return now.length === 2 && now.every((a) => a.nodeName !== victimName && ['n1', 'n2', 'n3'].includes(a.nodeName)) && now
  }, { what: 'the lost allocation running on another z1 node', timeoutMs: 20_000 })
  t.log(`rescheduled after ${Date.now() - killedAt} ms`)
  await eventually(async () => (await roles(observer)) === 3, { what: '3 healthy voters again', timeoutMs: 15_000 })
  t.log(`voters healed after ${Date.now() - killedAt} ms`)
  t.is((await runCli(['var', 'put', 'after/heal', 'ok'], observer.address)).code, 0, 'writes keep working')

  // A system job: one allocation on every alive node.
  const sys = execJob('everywhere', 1, [])
  ;(sys.job.everywhere as Record<string, unknown>).type = 'system'
  const sysFile = join(dir, 'everywhere.json')
  await writeFile(sysFile, JSON.stringify(sys))
  const sysRun = await runCli(['job', 'run', sysFile], observer.address)
  t.is(sysRun.code, 0, sysRun.stdout + sysRun.stderr)

  // A job nothing fits is accepted, blocked with the reason, and starts when a node that fits joins.
  const gpu = join(dir, 'gpu.json')
  await writeFile(gpu, JSON.stringify(execJob('gpu', 1, [{ attribute: '${meta.gpu}', value: 'yes' }])))
  const blocked = await runCli(['job', 'run', gpu], observer.address)
  t.is(blocked.code, 2, blocked.stdout + blocked.stderr)
  t.regex(blocked.stdout, /constraint \$\{meta\.gpu\} = yes: attribute missing/)
  const status = await runCli(['job', 'status', 'gpu'], observer.address)
  t.regex(status.stdout, /Placement Failure/)
  agents.push(await AgentProcess.start({
    dataDir: join(dir, 'n6'), name: 'n6', bind: binds[5]!, httpPort: await freePort(), dev: false,
    join: [observer.options.bind], extraArgs: ['--meta', 'gpu=yes'],
  }))
  await eventually(async () => {
    const a = (await observer.get<AllocStub[]>('/v1/job/gpu/allocations')).find((x) => x.desiredStatus === 'run')
    return a?.nodeName === 'n6' && a.clientStatus === 'running'
  }, { what: 'the blocked job running on the new node', timeoutMs: 20_000 })
  // The system job placed before n6 existed runs there too.
  await eventually(async () => {
    const on = (await observer.get<AllocStub[]>('/v1/job/everywhere/allocations')).filter((x) => x.desiredStatus === 'run' && x.clientStatus === 'running').map((x) => x.nodeName)
    return on.includes('n6') && on.length === alive().length
  }, { what: 'the system job on every alive node, the new one included', timeoutMs: 20_000 })
  t.true(alive().length === 5)
})
