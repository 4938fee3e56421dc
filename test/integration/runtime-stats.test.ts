// Usage stats of running tasks: docker (engine stats API) and exec (/proc of the
// task's process group), against what they reserved, in the API and alloc status.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface Usage { state: string; cpu?: { percent: number; mhz: number }; memory?: { rssBytes: number; usageBytes?: number }; reserved: { cpu: number; memoryMB: number }; error?: string }

const BUSY = 'while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.05; done'

test('running tasks report CPU and memory against their reservation', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('stats')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-stats', bind: '127.0.0.47', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'st'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'st.json')
  await writeFile(file, JSON.stringify({ job: { st: { group: { g: { task: {
    box: { driver: 'docker', config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', BUSY] }, resources: { cpu: 50, memory: 16 }, kill_timeout: '1s' },
    proc: { driver: 'exec', config: { command: '/bin/sh', args: ['-c', BUSY] }, resources: { cpu: 60, memory: 24 }, kill_timeout: '1s' },
    once: { driver: 'exec', config: { command: '/bin/true' }, essential: false },
  } } } } } }))
  t.is((await runCli(['job', 'run', file, '--detach'], agent.address)).code, 0)
  const id = await eventually(async () => {
    const [a] = await agent.get<{ id: string; clientStatus: string }[]>('/v1/job/st/allocations')
    return a?.clientStatus === 'running' && a.id
  }, { what: 'allocation running', timeoutMs: 30_000 })

  const stats = await eventually(async () => {
    const s = await agent.get<{ allocId: string; tasks: Record<string, Usage> }>(`/v1/client/allocation/${id.slice(0, 8)}/stats`)
    return s.tasks.box?.cpu && s.tasks.proc?.cpu && s.tasks.box.cpu.percent > 0 && s.tasks.proc.cpu.percent > 0 && s
  }, { what: 'stats with CPU use', timeoutMs: 20_000 })
  t.is(stats.allocId, id)
  const { box, proc, once } = stats.tasks
  t.like(box, { state: 'running', reserved: { cpu: 50, memoryMB: 16 } })
  t.like(proc, { state: 'running', reserved: { cpu: 60, memoryMB: 24 } })
  t.true(box!.memory!.rssBytes > 0, JSON.stringify(box))
  t.true(proc!.memory!.rssBytes > 0, JSON.stringify(proc))
  t.true(box!.cpu!.mhz > 0)
  t.deepEqual(once, { state: 'dead', reserved: { cpu: 100, memoryMB: 300 } })

  const one = await agent.get<{ tasks: Record<string, Usage> }>(`/v1/client/allocation/${id}/stats?task=proc`)
  t.deepEqual(Object.keys(one.tasks), ['proc'])

  const status = await runCli(['alloc', 'status', id.slice(0, 8)], agent.address)
  t.is(status.code, 0, status.stderr)
  t.regex(status.stdout, /Task "box" is "running", restarts: 0\nUsage: CPU [\d.]+% \(\d+ MHz\) of 50 MHz, memory [\d.]+ MiB of 16 MiB/)
  t.regex(status.stdout, /Task "proc" is "running", restarts: 0\nUsage: CPU [\d.]+% \(\d+ MHz\) of 60 MHz, memory [\d.]+ MiB of 24 MiB/)
  const json = JSON.parse((await runCli(['alloc', 'status', id.slice(0, 8), '--json'], agent.address)).stdout) as { usage: Record<string, Usage> }
  t.true(json.usage.proc!.memory!.rssBytes > 0)
  const quick = await runCli(['alloc', 'status', id.slice(0, 8), '--no-stats'], agent.address)
  t.notRegex(quick.stdout, /Usage:/)
})
