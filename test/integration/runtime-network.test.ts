// A group of two docker tasks shares one network namespace owned by a pause
// container: task B reaches task A on localhost; the pause container publishes
// the ports, is re-attached after an agent restart and removed with the allocation.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

const jobFile = {
  job: { pair: { group: { g: {
    network: { port: { http: { to: 8080 } } },
    restart: { attempts: 2, interval: '5m', delay: '1s', mode: 'fail' },
    task: {
      web: {
        driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], ports: ['http'] },
      },
      client: {
        driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'while true; do wget -qO- http://127.0.0.1:8080/ && echo; sleep 0.5; done'] },
      },
    },
  } } } },
}

test('two docker tasks talk over localhost through the pause container, which survives agent restarts and goes with the allocation', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('network')
  const bind = '127.0.0.43'
  let agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-network', bind, httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  const containers = () => docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })
  t.teardown(async () => {
    await agent.kill()
    for (const c of await containers()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'pair.json')
  await writeFile(file, JSON.stringify(jobFile))
  const run = await runCli(['job', 'run', file], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr + agent.output)
  const [stub] = await agent.get<{ id: string; ports: { label: string; hostIp: string; value: number }[] }[]>('/v1/job/pair/allocations')
  const allocId = stub!.id

  // B prints what it fetched from A over localhost.
  const logs = await eventually(async () => {
    const r = await runCli(['alloc', 'logs', allocId.slice(0, 8), 'client'], agent.address)
    return /Hello from Shoal/.test(r.stdout) && r.stdout
  }, { what: 'client task fetched the page from web over localhost', timeoutMs: 30_000 })
  t.regex(logs, /Hello from Shoal/)

  // One pause container owns the namespace and publishes the port; the tasks join it.
  const list = await containers()
  const pause = list.filter((c) => c.Labels['shoal.pause'] === '1')
  t.is(pause.length, 1)
  t.is(pause[0]!.Labels['shoal.alloc'], allocId)
  t.is(pause[0]!.Names[0], `/shoal.pause-${allocId}`)
  const tasks = list.filter((c) => c.Labels['shoal.task'])
  t.is(tasks.length, 2)
  for (const c of tasks) {
    const info = await docker.getContainer(c.Id).inspect()
    t.is(info.HostConfig.NetworkMode, `container:${pause[0]!.Id}`, c.Labels['shoal.task'])
  }
  const port = stub!.ports.find((p) => p.label === 'http')!
  t.is(port.hostIp, bind)
  const page = await eventually(async () => {
    const res = await fetch(`http://${port.hostIp}:${port.value}/`)
    return res.ok && (await res.text())
  }, { what: 'published port answers' })
  t.regex(page, /Hello from Shoal/)

  // A leftover pause container of an allocation the state does not know is removed at agent start;
  // the allocation's own pause container is re-attached, not replaced.
  const leftover = await docker.createContainer({
    name: `shoal.pause-leftover-${Date.now()}`, Image: TEST_IMAGE, Cmd: ['sleep', '600'],
    Labels: { 'shoal.alloc': 'leftover-alloc', 'shoal.node': self.nodeId, 'shoal.pause': '1' },
  })
  await agent.kill('SIGKILL')
  agent = await AgentProcess.start(agent.options)
  await eventually(async () => (await docker.listContainers({ all: true, filters: { id: [leftover.id] } })).length === 0, { what: 'leftover pause container removed' })
  await eventually(async () => {
    const a = await agent.get<{ clientStatus: string; taskStates: Record<string, { events: { type: string }[] }> }>(`/v1/allocation/${allocId}`)
    return a.clientStatus === 'running' && a.taskStates.web!.events.at(-1)!.type === 'Reattached'
  }, { what: 'tasks re-attached' })
  const again = await containers()
  t.deepEqual(again.map((c) => c.Id).sort(), list.map((c) => c.Id).sort(), 'same containers, no second pause container')
  t.regex(agent.output, /removing leftover network namespace of allocation leftover/)

  const stop = await runCli(['job', 'stop', 'pair'], agent.address)
  t.is(stop.code, 0, stop.stdout + stop.stderr)
  await eventually(async () => (await containers()).length === 0, { what: 'no container left after job stop, pause included' })
})
