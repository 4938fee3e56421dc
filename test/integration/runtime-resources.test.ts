// Volumes, env_from_var, cpu_hard_limit and memory_max in a real agent and the
// real engine; a missing volume path or variable fails the allocation with that
// exact reason. The exec driver's cgroup limits against a stand-in hierarchy.
import test from 'ava'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ExecDriver } from '../../src/runtime/exec.ts'
import { cpuQuota } from '../../src/runtime/limits.ts'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { execSpec, tempDir as driverTempDir } from '../helpers/tasks.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocView { id: string; clientStatus: string; clientDescription: string; taskStates: Record<string, { state: string; failed: boolean; events: { type: string; message: string }[] }> }

test('volumes, env_from_var, cpu_hard_limit and memory_max; a missing volume path or variable fails with its reason', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('resources')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-resources', bind: '127.0.0.48', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    for (const job of ['res', 'badvol', 'badvar']) await runCli(['job', 'stop', job], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const shared = join(dir, 'shared')
  await mkdir(shared)
  await writeFile(join(shared, 'hello.txt'), 'from the host\n')
  t.is((await runCli(['var', 'put', 'app/greeting', 'hello'], agent.address)).code, 0)

  const jobs: Record<string, unknown> = {
    res: { group: { g: { task: { box: {
      driver: 'docker',
      config: {
        image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'cat /data/hello.txt; echo "greeting=$GREETING"; exec sleep 600'],
        volumes: [`${shared}:/data:ro`], cpu_hard_limit: true,
      },
      env_from_var: { GREETING: 'app/greeting' },
      resources: { cpu: 100, memory: 16, memory_max: 32 }, kill_timeout: '1s',
    } } } } },
    badvol: { group: { g: { restart: { attempts: 0 }, task: { box: {
      driver: 'docker', config: { image: TEST_IMAGE, command: '/bin/sleep', args: ['600'], volumes: [join(dir, 'no-such-dir') + ':/data'] },
      resources: { cpu: 20, memory: 16 },
    } } } } },
    badvar: { group: { g: { restart: { attempts: 0 }, task: { proc: {
      driver: 'exec', config: { command: '/bin/sleep', args: ['600'] }, env_from_var: { SECRET: 'no/such/var' },
      resources: { cpu: 20, memory: 16 },
    } } } } },
  }
  for (const [id, body] of Object.entries(jobs)) {
    const file = join(dir, `${id}.json`)
    await writeFile(file, JSON.stringify({ job: { [id]: body } }))
    const r = await runCli(['job', 'run', file, '--detach'], agent.address)
    t.is(r.code, 0, r.stdout + r.stderr)
  }
  const firstAlloc = async (job: string) => {
    const stubs = await agent.get<{ id: string; createTime: number }[]>(`/v1/job/${job}/allocations`)
    const first = stubs.sort((a, b) => a.createTime - b.createTime)[0]
    return first && agent.get<AllocView>(`/v1/allocation/${first.id}`)
  }

  const res = await eventually(async () => {
    const a = await firstAlloc('res')
    return a?.clientStatus === 'running' && a
  }, { what: 'res running', timeoutMs: 30_000 })
  const logs = await eventually(async () => {
    const r = await runCli(['alloc', 'logs', res.id.slice(0, 8)], agent.address)
    return /greeting=/.test(r.stdout) && r.stdout
  }, { what: 'res output' })
  t.is(logs, 'from the host\ngreeting=hello\n')
  const [c] = await docker.listContainers({ filters: { label: [`shoal.alloc=${res.id}`] } })
  const info = await docker.getContainer(c!.Id).inspect()
  t.deepEqual(info.HostConfig.Binds, [`${shared}:/data:ro`])
  t.is(info.HostConfig.CpuPeriod, 100_000)
  t.is(info.HostConfig.CpuQuota, cpuQuota(100))
  t.is(info.HostConfig.Memory, 32 * 2 ** 20)
  t.is(info.HostConfig.MemoryReservation, 16 * 2 ** 20)
  t.true(info.Config.Env.includes('SHOAL_MEMORY_MAX_LIMIT=32'))
  const write = await runCli(['alloc', 'exec', res.id.slice(0, 8), '--', 'sh', '-c', 'echo x > /data/new'], agent.address)
  t.not(write.code, 0, 'the volume is read-only')
  t.regex(write.stderr, /Read-only file system/)

  const badvol = await eventually(async () => {
    const a = await firstAlloc('badvol')
    return a?.clientStatus === 'failed' && a
  }, { what: 'badvol failed', timeoutMs: 30_000 })
  t.deepEqual(badvol.taskStates.box!.events.filter((e) => e.type === 'Driver Failure').map((e) => e.message), [`volume host path "${join(dir, 'no-such-dir')}" does not exist`])

  const badvar = await eventually(async () => {
    const a = await firstAlloc('badvar')
    return a?.clientStatus === 'failed' && a
  }, { what: 'badvar failed', timeoutMs: 30_000 })
  t.deepEqual(badvar.taskStates.proc!.events.map((e) => `${e.type}: ${e.message}`), [
    'Received: task received by client',
    'Setup Failure: env_from_var SECRET: variable "no/such/var" not found',
    'Not Restarting: error is not recoverable',
  ])
  const status = await runCli(['alloc', 'status', badvar.id.slice(0, 8)], agent.address)
  t.regex(status.stdout, /Setup Failure\s+env_from_var SECRET: variable "no\/such\/var" not found/)
})

test('exec driver: memory_max and cpu_hard_limit become memory.max, memory.low and cpu.max', async (t) => {
  const root = await driverTempDir(t, 'shoal-cgroup-')
  await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n')
  const driver = new ExecDriver({ stateDir: join(root, 'state'), cgroupRoot: root })
  const allocDir = join(root, 'alloc')
  await mkdir(allocDir)
  const spec = execSpec({ command: '/bin/sh', args: ['-c', 'exit 0'] }, { allocDir, cpu: 250, memoryMB: 16 })
  if (spec.task.driver !== 'exec') throw new Error('exec spec')
  spec.task.resources.memoryMaxMB = 48
  spec.task.config.cpuHardLimit = true
  const handle = await driver.start(spec)
  t.teardown(() => driver.destroy(handle))
  await driver.wait(handle)
  const cg = join(root, 'shoal', `${encodeURIComponent(spec.allocId)}+worker`)
  t.is(await readFile(join(cg, 'memory.max'), 'utf8'), String(48 * 2 ** 20))
  t.is(await readFile(join(cg, 'memory.low'), 'utf8'), String(16 * 2 ** 20))
  t.is(await readFile(join(cg, 'cpu.max'), 'utf8'), `${cpuQuota(250)} 100000`)
})
