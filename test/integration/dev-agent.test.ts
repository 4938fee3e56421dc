// Foundation, end to end: a real `shoal agent --dev` process, the real CLI, the
// real Docker engine. Runs examples/web.json and checks what users rely on.
import test from 'ava'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, ROOT, runCli, tempDir } from '../harness/agent.ts'

interface AllocStub { id: string; desiredStatus: string; clientStatus: string; ports: { label: string; hostIp: string; value: number; to: number }[] }

test('dev agent runs examples/web.json: 2 containers, restarts a killed one, re-attaches after kill -9, job stop removes all', async (t) => {
  const docker = await requireDocker()
  const dataDir = await tempDir('dev')
  const bind = '127.0.0.21'
  let agent = await AgentProcess.start({ dataDir, name: 'it-dev-1', bind, httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  const containers = async (all = false) =>
    docker.listContainers({ all, filters: { label: [`shoal.node=${self.nodeId}`] } })
  t.teardown(async () => {
    await agent.kill()
    for (const c of await containers(true)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    await rm(dataDir, { recursive: true, force: true })
  })

  const run = await runCli(['job', 'run', join(ROOT, 'examples/web.json')], agent.address)
  t.is(run.code, 0, `job run failed:\n${run.stdout}\n${run.stderr}\nagent:\n${agent.output}`)
  t.regex(run.stdout, /Evaluation \w+ complete/)

  // Two containers, labelled, each serving the index page on its mapped host port.
  const running = await eventually(async () => {
    const list = await containers()
    return list.length === 2 && list.every((c) => c.State === 'running') && list
  }, { what: '2 running containers' })
  for (const c of running) {
    t.like(c.Labels, { 'shoal.job': 'web', 'shoal.group': 'frontend', 'shoal.task': 'httpd', 'shoal.node': self.nodeId })
  }
  const status = await runCli(['job', 'status', 'web', '--json'], agent.address)
  t.is(status.code, 0, status.stderr)
  const job = JSON.parse(status.stdout) as { status: string; allocations: AllocStub[] }
  const live = job.allocations.filter((a) => a.desiredStatus === 'run')
  t.is(live.length, 2)
  for (const a of live) {
    const port = a.ports.find((p) => p.label === 'http')!
    t.is(port.hostIp, bind)
    t.is(port.to, 80)
    const page = await eventually(async () => {
      const res = await fetch(`http://${port.hostIp}:${port.value}/`)
      return res.ok && (await res.text())
    }, { what: `index page on ${port.hostIp}:${port.value}` })
    t.regex(page, /Hello from Shoal/)
  }

  // docker kill one container → the restart policy starts it again.
  const victim = running[0]!
  const victimAlloc = victim.Labels['shoal.alloc']!
  await docker.getContainer(victim.Id).kill()
  await eventually(async () => {
    const a = await agent.get<{ clientStatus: string; taskStates: Record<string, { restarts: number; state: string }> }>(`/v1/allocation/${victimAlloc}`)
    const info = await docker.getContainer(victim.Id).inspect()
    return a.taskStates.httpd!.restarts === 1 && a.taskStates.httpd!.state === 'running' && info.State.Running
  }, { timeoutMs: 30_000, what: 'killed container restarted by Shoal' })
  const alloc = await runCli(['alloc', 'status', victimAlloc.slice(0, 8)], agent.address)
  t.regex(alloc.stdout, /Terminated\s+exited with code 137 \(signal 9\)/)
  t.regex(alloc.stdout, /Restarting\s+restarting in 2s/)

  // kill -9 the agent, start it again on the same data dir: it re-attaches.
  const before = (await containers()).map((c) => c.Id).sort()
  await agent.kill('SIGKILL')
  t.is((await containers()).length, 2, 'containers outlive the agent')
  agent = await AgentProcess.start(agent.options)
  await new Promise((r) => setTimeout(r, 3_000)) // give a duplicate every chance to appear
  const after = await containers(true)
  t.deepEqual(after.map((c) => c.Id).sort(), before, 'the same two containers, no duplicate')
  t.true(after.every((c) => c.State === 'running'))
  t.regex(agent.output, /re-attaching to 2 running task\(s\) of 2 allocation\(s\)/)
  const events = await agent.get<{ taskStates: Record<string, { events: { type: string }[] }> }>(`/v1/allocation/${victimAlloc}`)
  t.is(events.taskStates.httpd!.events.at(-1)!.type, 'Reattached')
  const again = await agent.get<{ allocations: AllocStub[] }>('/v1/job/web')
  t.is(again.allocations.filter((a) => a.desiredStatus === 'run' && a.clientStatus === 'running').length, 2)

  // job stop → no container left.
  const stop = await runCli(['job', 'stop', 'web'], agent.address)
  t.is(stop.code, 0, `${stop.stdout}\n${stop.stderr}`)
  await eventually(async () => (await containers(true)).length === 0, { what: 'no containers after job stop' })
  const final = await agent.get<{ status: string }>('/v1/job/web')
  t.is(final.status, 'dead')
})
