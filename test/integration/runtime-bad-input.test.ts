// Tasks that cannot start: the allocation fails with the exact reason in its task
// events (and alloc status), and the agent keeps serving and running other jobs.
import test from 'ava'
import { createServer, type Server } from 'node:net'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface AllocView { id: string; createTime: number; clientStatus: string; clientDescription: string; taskStates: Record<string, { failed: boolean; events: { type: string; message: string }[] }> }

const BIND = '127.0.0.50'
const docker = (config: Record<string, unknown>) => ({ driver: 'docker', config: { image: TEST_IMAGE, command: '/bin/sleep', args: ['600'], ...config }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s' })

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(port, BIND, () => resolve(s))
  })
}

test('image missing, command not found, host port taken: the allocation fails with the reason; the agent keeps serving', async (t) => {
  const engine = await requireDocker()
  const dir = await tempDir('bad-runtime')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-bad-runtime', bind: BIND, httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  const taken = await freePort(BIND)
  const takenPair = await freePort(BIND)
  const holders = [await listen(taken), await listen(takenPair)]
  const jobs: Record<string, Record<string, unknown>> = {
    noimage: { task: { box: docker({ image: 'shoal-test/does-not-exist:1' }) } },
    nocmd: { task: { box: docker({ command: '/bin/no-such-program' }) } },
    noexec: { task: { proc: { driver: 'exec', config: { command: 'no-such-program-xyz' }, resources: { cpu: 20, memory: 16 } } } },
    porttaken: { network: { port: { http: { static: taken, to: 80 } } }, task: { box: docker({ ports: ['http'] }) } },
    pairtaken: { network: { port: { http: { static: takenPair, to: 80 } } }, task: { a: docker({ ports: ['http'] }), b: docker({}) } },
    good: { task: { box: docker({}) } },
  }
  t.teardown(async () => {
    for (const h of holders) h.close()
    for (const id of Object.keys(jobs)) await fetch(`${agent.address}/v1/job/${id}`, { method: 'DELETE' }).catch(() => undefined)
    await agent.kill()
    for (const c of await engine.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await engine.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  // Submitted through the API (the CLI's job run is covered elsewhere).
  for (const [id, group] of Object.entries(jobs)) {
    const body = JSON.stringify({ job: { [id]: { group: { g: { restart: { attempts: 0 }, ...group } } } } })
    const r = await fetch(`${agent.address}/v1/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    t.is(r.status, 200, await r.text())
  }
  const failed = (job: string) => eventually(async () => {
    const stubs = await agent.get<{ id: string; createTime: number }[]>(`/v1/job/${job}/allocations`)
    const first = stubs.sort((a, b) => a.createTime - b.createTime)[0]
    const a = first && (await agent.get<AllocView>(`/v1/allocation/${first.id}`))
    return a?.clientStatus === 'failed' && a
  }, { what: `${job} failed`, timeoutMs: 45_000 })
  const reasons = (a: AllocView, task: string, type = 'Driver Failure') => a.taskStates[task]!.events.filter((e) => e.type === type).map((e) => e.message)

  const noimage = await failed('noimage')
  t.regex(reasons(noimage, 'box')[0] ?? '', /^image "shoal-test\/does-not-exist:1" not found locally and could not be pulled: /)
  t.is(noimage.clientDescription, 'task "box" failed')
  t.deepEqual(reasons(await failed('nocmd'), 'box'), ['command "/bin/no-such-program" not found in image'])
  t.regex(reasons(await failed('noexec'), 'proc')[0] ?? '', /^command "no-such-program-xyz" not found in PATH \(/)
  t.deepEqual(reasons(await failed('porttaken'), 'box'), [`port ${BIND}:${taken} is already in use`])
  // Two docker tasks: the pause container publishes the port, and every task fails with its reason.
  const pair = await failed('pairtaken')
  for (const task of ['a', 'b']) {
    t.deepEqual(reasons(pair, task, 'Setup Failure'), [`shared network: pause container: port ${BIND}:${takenPair} is already in use`], task)
  }
  t.deepEqual((await engine.listContainers({ all: true, filters: { label: [`shoal.alloc=${pair.id}`] } })).map((c) => c.Names), [], 'no pause container left')

  const status = await runCli(['alloc', 'status', noimage.id.slice(0, 8)], agent.address)
  t.regex(status.stdout, /Client Status\s+= failed \(task "box" failed\)/)
  t.regex(status.stdout, /Driver Failure\s+image "shoal-test\/does-not-exist:1" not found locally/)

  // The agent still serves, and a good job next to the broken ones runs.
  t.is((await agent.get<{ name: string }>('/v1/agent/self')).name, 'it-bad-runtime')
  await eventually(async () => {
    const [a] = await agent.get<{ clientStatus: string }[]>('/v1/job/good/allocations')
    return a?.clientStatus === 'running'
  }, { what: 'good job running' })
  t.false(agent.exited)
})
