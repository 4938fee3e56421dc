// The mesh's kernel data path on a real agent (root, iptables) with real
// busybox httpd containers: a published port is DNATed round-robin to the 3
// instances' host ports; an instance that turns unhealthy or is stopped gets
// no new connection while established ones keep theirs; with no healthy
// instance the user-space listener answers; the agent's chains go at clean
// shutdown, and a restart after kill -9 replaces the stale ones (and those of
// agents that are gone). Every rule is removed even when a test fails.
import test from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { removeChains } from '../../src/mesh/nat-datapath.ts'
import { natChains, natSetup, natUpdate } from '../../src/mesh/nat-rules.ts'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, SHOAL, tempDir } from '../harness/agent.ts'

interface Instance { allocId: string; healthy: boolean; address: string; port: number }
interface Listener { service: string; port: number; state: string; instances: number; datapath: string; datapathReason?: string }
interface MeshStatus {
  datapath: { mode: string; chain?: string; reason?: string }
  listeners: Listener[]
  services: Record<string, { requests: number; activeConnections: number; failures: number; instances: number }>
}

const HOST = '127.0.12.1'
const ORPHAN_HOST = '127.0.12.99'
const ctx = {} as { dir: string; agent: AgentProcess; docker: Docker; nodeId: string; port: number; chain: string; orphan?: string }

const mesh = () => ctx.agent.get<MeshStatus>('/v1/agent/mesh')
const web = () => ctx.agent.get<Instance[]>('/v1/service/web')
const save = () => execFileSync('iptables-save', ['-t', 'nat']).toString() + execFileSync('iptables-save', ['-t', 'filter']).toString()
const rulesOf = (chain: string) => save().split('\n').filter((l) => l.includes(chain))
const startAgent = () => AgentProcess.start({
  dataDir: join(ctx.dir, 'data'), name: 'mesh-kernel', bind: HOST, httpPort: ctx.agent?.options.httpPort ?? 0, extraArgs: ['--mesh-datapath', 'kernel'],
})

/** One request on a new connection; the body names the allocation that answered. */
function get(port = ctx.port): Promise<string> {
  return held(port).then((s) => s.request())
}

/** A connection opened now, its request sent later: which instance it reaches is fixed at connect. */
function held(port = ctx.port): Promise<{ request(): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port }, () => resolve({
      request: () => new Promise((res, rej) => {
        let out = ''
        s.on('data', (d) => (out += d))
        // 'close', not 'end': a connection reset (the listener with no instance) has no end.
        s.on('close', () => {
          const m = /^HTTP\/1\.[01] (\d+)[^]*?\r\n\r\n([^]*)$/.exec(out)
          if (m?.[1] === '200') res(m[2]!.trim())
          else rej(new Error(`unexpected answer: ${JSON.stringify(out.slice(0, 80))}`))
        })
        s.write('GET / HTTP/1.0\r\n\r\n')
      }),
    }))
    s.on('error', reject)
    s.setTimeout(10_000, () => s.destroy(new Error('timed out')))
  })
}

async function container(allocId: string): Promise<Docker.Container> {
  const [c] = await ctx.docker.listContainers({ filters: { label: [`shoal.alloc=${allocId}`, 'shoal.task=httpd'] } })
  return ctx.docker.getContainer(c!.Id)
}

async function dexec(allocId: string, cmd: string): Promise<void> {
  execFileSync('docker', ['exec', (await container(allocId)).id, '/bin/sh', '-c', cmd])
}

/** The kernel's rules for the port, as the agent reports them, hold `n` instances. */
async function kernelHas(n: number): Promise<Listener> {
  return eventually(async () => {
    const l = (await mesh()).listeners.find((x) => x.service === 'web')
    return l?.datapath === 'kernel' && l.instances === n && l
  }, { what: `kernel rules with ${n} instances`, timeoutMs: 30_000, intervalMs: 50 })
}

test.before(async () => {
  ctx.docker = await requireDocker()
  if (process.getuid?.() !== 0) throw new Error('the kernel data path test needs root (iptables)')
  ctx.dir = await tempDir('mesh-kernel')
  ctx.agent = await AgentProcess.start({ dataDir: join(ctx.dir, 'data'), name: 'mesh-kernel', bind: HOST, httpPort: await freePort(), extraArgs: ['--mesh-datapath', 'kernel'] })
  ctx.nodeId = (await ctx.agent.get<{ nodeId: string }>('/v1/agent/self')).nodeId
  ctx.port = await freePort(HOST)
  const file = join(ctx.dir, 'web.json')
  await writeFile(file, JSON.stringify({ job: { web: { group: { www: {
    count: 3,
    network: { port: { http: { to: 8080 } } },
    restart: { attempts: 10, interval: '5m', delay: '1s', mode: 'delay' },
    // The check reads its own file, so an instance can be made unhealthy while it still serves "/".
    service: [{ name: 'web', port: 'http', checks: [{ type: 'http', port: 'http', path: '/health.html', interval: '500ms', timeout: '1s' }], publish: { port: ctx.port } }],
    task: { httpd: {
      driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
      config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo "$SHOAL_ALLOC_ID" > /www/index.html; echo ok > /www/health.html; exec /bin/httpd -f -p 8080 -h /www'], ports: ['http'] },
    } },
  } } } } }))
  const r = await runCli(['job', 'run', file], ctx.agent.address)
  if (r.code !== 0) throw new Error(`job run: ${r.stdout}${r.stderr}`)
  await eventually(async () => (await web()).filter((i) => i.healthy).length === 3, { what: '3 healthy instances', timeoutMs: 60_000 })
})

test.after.always(async () => {
  await ctx.agent?.kill()
  // Whatever happened: none of this test's rules stay behind.
  await removeChains(new Set([ctx.chain ?? natChains(ctx.nodeId ?? '-', 0).prefix, ...(ctx.orphan ? [ctx.orphan] : [])])).catch(() => undefined)
  if (ctx.docker && ctx.nodeId) {
    for (const c of await ctx.docker.listContainers({ all: true, filters: { label: [`shoal.node=${ctx.nodeId}`] } })) {
      await ctx.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
  }
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true })
})

test.serial('a bad --mesh-datapath value is refused, naming the flag', (t) => {
  const r = spawnSync(SHOAL, ['agent', '--dev', '--data-dir', join(ctx.dir, 'bad'), '--mesh-datapath', 'ipvs'], { encoding: 'utf8', timeout: 30_000 })
  t.not(r.status, 0)
  t.regex(r.stderr, /--mesh-datapath: must be auto, kernel, userspace \(got "ipvs"\)/)
})

test.serial('not root: auto falls back to the user-space proxy and says why; kernel refuses to start', async (t) => {
  const dir = join(ctx.dir, 'nobody')
  await mkdir(dir)
  await chmod(ctx.dir, 0o755)
  await chmod(dir, 0o777)
  const wrapper = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
  const refused = spawnSync(wrapper[0]!, [...wrapper.slice(1), SHOAL, 'agent', '--dev', '--data-dir', join(dir, 'k'), '--bind', '127.0.12.21', '--http', '127.0.0.1:0', '--dns-addr', 'off', '--mesh-datapath', 'kernel'],
    { encoding: 'utf8', timeout: 60_000 })
  t.not(refused.status, 0)
  t.regex(refused.stderr, /--mesh-datapath kernel: the agent is not running as root/)
  const agent = await AgentProcess.start({ dataDir: join(dir, 'a'), name: 'mesh-nobody', bind: '127.0.12.20', httpPort: await freePort(), wrapper, extraArgs: ['--dns-addr', 'off'] })
  t.teardown(() => agent.kill())
  const port = await freePort('127.0.12.20')
  const file = join(dir, 'echo.json')
  const script = `require('net').createServer((s) => { s.on('error', () => {}); s.end('echo\\n') }).listen(Number(process.env.SHOAL_PORT_p), process.env.SHOAL_IP_p)`
  await writeFile(file, JSON.stringify({ job: { echo: { group: { g: {
    network: { port: { p: {} } },
    service: [{ name: 'echo', port: 'p', checks: [{ type: 'tcp', port: 'p', interval: '500ms', timeout: '1s' }], publish: { port } }],
    task: { srv: { driver: 'exec', resources: { cpu: 20, memory: 64 }, config: { command: process.execPath, args: ['-e', script] } } },
  } } } } }))
  const r = await runCli(['job', 'run', file], agent.address)
  t.is(r.code, 0, r.stdout + r.stderr)
  const st = await eventually(async () => {
    const m = await agent.get<MeshStatus>('/v1/agent/mesh')
    return m.listeners.some((l) => l.service === 'echo' && l.instances === 1) && m
  }, { what: 'echo published', timeoutMs: 30_000 })
  t.deepEqual(st.datapath, { mode: 'userspace', reason: 'the agent is not running as root (iptables needs it)' })
  t.like(st.listeners.find((l) => l.service === 'echo'), { datapath: 'userspace', state: 'listening' })
  t.regex(agent.output, /published ports on the user-space proxy: the agent is not running as root/)
  const reply = await new Promise<string>((resolve, reject) => {
    let out = ''
    net.connect({ host: '127.0.12.20', port }).on('data', (d) => (out += d)).on('close', () => resolve(out)).on('error', reject)
  })
  t.is(reply, 'echo\n')
  t.false(save().includes(' -d 127.0.12.20/32 '), 'no rule for this agent')
  await runCli(['job', 'stop', 'echo'], agent.address)
  await eventually(async () => (await agent.get<{ clientStatus: string }[]>('/v1/job/echo/allocations')).every((x) => x.clientStatus !== 'running'), { what: 'echo stopped' })
})

test.serial('the published port is DNATed in turn to the 3 instances\' host ports; the kernel counts the connections', async (t) => {
  const st = await mesh()
  t.is(st.datapath.mode, 'kernel')
  ctx.chain = st.datapath.chain!
  t.is(ctx.chain, natChains(ctx.nodeId, 0).prefix)
  await kernelHas(3)
  const instances = (await web()).filter((i) => i.healthy)
  const dnat = rulesOf(`${ctx.chain}-P${ctx.port}`).filter((l) => l.includes('DNAT'))
  t.deepEqual(dnat.map((l) => / --to-destination (\S+)/.exec(l)![1]).sort(), instances.map((i) => `${i.address}:${i.port}`).sort())
  t.true(dnat.every((l) => l.includes(`--to-destination ${HOST}:`)), 'host-published addresses, never the bridge\'s')
  const before = st.services.web!.requests
  const seen = new Map<string, number>()
  for (let n = 0; n < 30; n++) {
    const id = await get()
    seen.set(id, (seen.get(id) ?? 0) + 1)
  }
  t.deepEqual([...seen.keys()].sort(), instances.map((i) => i.allocId).sort())
  t.deepEqual([...seen.values()], [10, 10, 10], 'nth: each instance in turn')
  const after = await mesh()
  t.is(after.services.web!.requests - before, 30, 'counted once, by the dispatch rule')
  t.like(after.listeners.find((l) => l.service === 'web'), { datapath: 'kernel', state: 'listening', instances: 3 })
})

test.serial('an unhealthy instance gets no new connection; established connections keep theirs; none healthy: the listener answers', async (t) => {
  const instances = (await web()).filter((i) => i.healthy)
  // 3 connections in a row reach the 3 instances (nth); held open across the rule changes below.
  const open = [await held(), await held(), await held()]
  const victim = instances[0]!
  await dexec(victim.allocId, 'rm /www/health.html')
  await eventually(async () => !(await web()).find((i) => i.allocId === victim.allocId)!.healthy, { what: 'victim unhealthy', timeoutMs: 15_000, intervalMs: 50 })
  await kernelHas(2)
  t.false(rulesOf(`${ctx.chain}-P${ctx.port}`).some((l) => l.includes(`${victim.address}:${victim.port}`)))
  const seen = new Set<string>()
  for (let n = 0; n < 20; n++) seen.add(await get())
  t.false(seen.has(victim.allocId))
  t.is(seen.size, 2)
  // conntrack keeps every established connection on its instance, the victim's included.
  const answers = await Promise.all(open.map((s) => s.request()))
  t.deepEqual(answers.sort(), instances.map((i) => i.allocId).sort())

  // No healthy instance: the port chain is empty, the user-space listener takes the connection (and closes it).
  for (const i of instances.slice(1)) await dexec(i.allocId, 'rm /www/health.html')
  await eventually(async () => (await web()).every((i) => !i.healthy), { what: 'all unhealthy', timeoutMs: 15_000 })
  await kernelHas(0)
  t.false(rulesOf(`${ctx.chain}-P${ctx.port}`).some((l) => l.includes('DNAT')))
  const failures = (await mesh()).services.web!.failures
  await t.throwsAsync(get())
  t.is((await mesh()).services.web!.failures, failures + 1)

  for (const i of instances) await dexec(i.allocId, 'echo ok > /www/health.html')
  await kernelHas(3)
  const back = new Set<string>()
  for (let n = 0; n < 6; n++) back.add(await get())
  t.is(back.size, 3)
})

test.serial('a stopped instance leaves the rules; its replacement joins them', async (t) => {
  const [victim] = (await web()).filter((i) => i.healthy)
  await (await container(victim!.allocId)).kill()
  await eventually(async () => !(await web()).find((i) => i.allocId === victim!.allocId)?.healthy, { what: 'catalog marks it down', timeoutMs: 15_000, intervalMs: 50 })
  await kernelHas(2)
  const seen = new Set<string>()
  for (let n = 0; n < 20; n++) seen.add(await get())
  t.false(seen.has(victim!.allocId))
  t.is(seen.size, 2)
  await eventually(async () => (await web()).filter((i) => i.healthy).length === 3, { what: '3 healthy again', timeoutMs: 60_000 })
  await kernelHas(3)
})

test.serial('kill -9 leaves the rules; a restart replaces them (and removes a dead agent\'s); SIGTERM removes them', async (t) => {
  await ctx.agent.kill('SIGKILL', { keepMeshRules: true })
  const stale = rulesOf(ctx.chain)
  t.true(stale.some((l) => l.startsWith('-A OUTPUT')), 'left behind by kill -9')
  // Another agent's chains, whose process is gone (a pid that was just used and has exited).
  const deadPid = spawnSync('true').pid!
  const orphan = natChains('a-gone-agent', deadPid)
  ctx.orphan = orphan.prefix
  execFileSync('iptables-restore', ['-w', '5', '--noflush'], {
    input: natSetup(orphan, ORPHAN_HOST) + natUpdate(orphan, ORPHAN_HOST, new Map(), new Map([[8080, { port: 8080, service: 'x', backends: [{ address: '127.0.12.98', port: 1 }] }]]))!,
  })
  t.true(rulesOf(orphan.prefix).length > 0)

  ctx.agent = await startAgent()
  await kernelHas(3)
  t.deepEqual(rulesOf(orphan.prefix), [], 'the dead agent\'s chains are gone')
  const jumps = rulesOf(ctx.chain).filter((l) => /^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) /.test(l))
  t.is(jumps.length, 4, jumps.join('\n'))
  t.regex(ctx.agent.output, /removed stale kernel rules/)
  const seen = new Set<string>()
  for (let n = 0; n < 6; n++) seen.add(await get())
  t.is(seen.size, 3)

  await ctx.agent.kill('SIGTERM')
  t.deepEqual(rulesOf(ctx.chain), [], 'a clean shutdown leaves no rule')
  t.false(save().includes('shoal-mesh node=' + ctx.nodeId))
})
