// The load-balancing mesh on 3 real agents with real busybox httpd
// containers: every agent's published port reaches every instance; a killed
// instance costs no client request once the catalog marks it down, and is
// back in rotation when healthy; PROXY protocol shows the backend the client
// address; upstreams reach a service on localhost from exec and docker tasks;
// a taken port and an unknown upstream are reported without harm. Agents 1
// and 2 serve published ports on the kernel data path (iptables, this suite
// runs as root), agent 3 on the user-space proxy (--mesh-datapath userspace):
// every check through "each agent" covers both.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface Instance { allocId: string; healthy: boolean; nodeName: string; address: string; port: number }
interface MeshStatus {
  datapath: { mode: string; reason?: string }
  listeners: { service: string; port: number; state: string; error?: string; instances: number; datapath: string }[]
  upstreams: { allocId: string; task: string; service: string; localPort: number; state: string; error?: string }[]
  services: Record<string, { requests: number; activeConnections: number; failures: number; instances: number }>
}
interface AllocStub { id: string; desiredStatus: string; clientStatus: string; nodeName: string }
interface TaskEvent { type: string; message: string }

const HOSTS = ['127.0.4.1', '127.0.4.2', '127.0.4.3']
const DATAPATHS = ['kernel', 'kernel', 'userspace']
const CLIENT_ADDRESS = '127.0.4.9'
const MARK = `shoal-mesh-test-${process.pid}`

const ctx = {} as { dir: string; agents: AgentProcess[]; docker: Docker; webPort: number; nodeId: Map<string, string> }

/** A free port on every agent address (published ports listen on each). */
async function portFreeOnAll(): Promise<number> {
  for (;;) {
    const p = await freePort(HOSTS[0])
    const ok = await Promise.all(HOSTS.map((h) => new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(p, h, () => s.close(() => resolve(true)))
    })))
    if (ok.every(Boolean)) return p
  }
}

async function runJob(name: string, spec: object, via = ctx.agents[0]!): Promise<void> {
  const file = join(ctx.dir, `${name}.json`)
  await writeFile(file, JSON.stringify({ job: { [name]: spec } }))
  const r = await runCli(['job', 'run', file], via.address)
  if (r.code !== 0) throw new Error(`job run ${name}: ${r.stdout}${r.stderr}`)
}

/** One HTTP GET through a mesh port; the body names the allocation that answered. */
function get(host: string, port: number): Promise<string> {
  // A new connection per request (no keep-alive pool): each one is balanced.
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${res.statusCode}`))))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

const instances = (service: string, via = ctx.agents[0]!) => via.get<Instance[]>(`/v1/service/${service}`)
const sorted = (s: Set<string>) => [...s].sort()
const mesh = (a: AgentProcess) => a.get<MeshStatus>('/v1/agent/mesh')

/** Every agent's web listener moves connections to `n` instances (kernel rules applied, or the proxy's pool). */
async function everyAgentServes(n: number): Promise<void> {
  await eventually(async () => {
    for (const a of ctx.agents) if ((await mesh(a)).listeners.find((l) => l.service === 'web')?.instances !== n) return false
    return true
  }, { what: `every agent's web listener at ${n} instances`, timeoutMs: 15_000, intervalMs: 50 })
}

/** Agent 1 has the allocation's upstream listeners open and 3 healthy web instances to proxy them to. */
async function upstreamsReady(allocId: string): Promise<void> {
  await eventually(async () => {
    const st = await mesh(ctx.agents[0]!)
    const ups = st.upstreams.filter((u) => u.allocId === allocId)
    return ups.length === 3 && ups.every((u) => u.state === 'listening') && st.services.web?.instances === 3
  }, { what: 'upstream listeners open, 3 web instances', timeoutMs: 60_000 })
}

test.before(async () => {
  ctx.docker = await requireDocker()
  ctx.dir = await tempDir('mesh')
  const binds = await Promise.all(HOSTS.map(async (h) => `${h}:${await freePort(h)}`))
  ctx.agents = []
  for (const [i, bind] of binds.entries()) {
    ctx.agents.push(await AgentProcess.start({
      dataDir: join(ctx.dir, `m${i + 1}`), name: `mesh-${i + 1}`, bind, httpPort: await freePort(), dev: false,
      ...(i > 0 ? { join: [binds[0]!] } : {}), extraArgs: ['--mesh-datapath', DATAPATHS[i] === 'kernel' ? 'auto' : 'userspace'],
    }))
  }
  ctx.nodeId = new Map()
  for (const a of ctx.agents) ctx.nodeId.set(a.options.name, (await a.get<{ nodeId: string }>('/v1/agent/self')).nodeId)
  await eventually(async () => (await ctx.agents[0]!.get<{ status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 3,
    { what: '3 ready nodes', timeoutMs: 30_000 })
  ctx.webPort = await portFreeOnAll()
  await runJob('web', {
    group: { www: {
      count: 3,
      constraint: [{ operator: 'distinct_hosts' }],
      network: { port: { http: { to: 8080 } } },
      restart: { attempts: 10, interval: '5m', delay: '1s', mode: 'delay' },
      service: [{
        name: 'web', port: 'http',
        checks: [{ type: 'http', port: 'http', path: '/', interval: '1s', timeout: '1s', retries: 1 }],
        publish: { port: ctx.webPort, balance: 'round-robin' },
      }],
      task: { httpd: {
        driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo "$SHOAL_ALLOC_ID" > /www/index.html; exec /bin/httpd -f -p 8080 -h /www'], ports: ['http'] },
      } },
    } },
  })
  await eventually(async () => (await instances('web')).filter((i) => i.healthy).length === 3, { what: '3 healthy web instances', timeoutMs: 60_000 })
})

test.after.always(async () => {
  for (const a of ctx.agents ?? []) await a.kill()
  if (ctx.docker) {
    for (const id of ctx.nodeId?.values() ?? []) {
      for (const c of await ctx.docker.listContainers({ all: true, filters: { label: [`shoal.node=${id}`] } })) {
        await ctx.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
      }
    }
  }
  try { execFileSync('pkill', ['-f', MARK]) } catch { /* none left */ }
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true })
})

test.serial('requests through each agent\'s published port reach all 3 instances; counters and listeners are visible', async (t) => {
  const healthy = new Set((await instances('web')).filter((i) => i.healthy).map((i) => i.allocId))
  t.is(healthy.size, 3)
  for (const [i, host] of HOSTS.entries()) {
    const seen = new Set<string>()
    for (let n = 0; n < 12; n++) seen.add(await get(host, ctx.webPort))
    t.deepEqual(sorted(seen), sorted(healthy), `through agent ${i + 1}`)
    const st = await mesh(ctx.agents[i]!)
    t.is(st.datapath.mode, DATAPATHS[i])
    t.like(st.listeners.find((l) => l.service === 'web'), { port: ctx.webPort, state: 'listening', instances: 3, datapath: DATAPATHS[i] })
    t.true(st.services.web!.requests >= 12)
    t.is(st.services.web!.failures, 0)
  }
})

test.serial('PROXY protocol v1: the backend sees the client\'s address', async (t) => {
  const port = await portFreeOnAll()
  const log = join(ctx.dir, 'proxy-lines.txt')
  // Records the first line of every connection (the PROXY header), answers "ok".
  const script = `require('net').createServer((s) => { let b = ''; s.on('data', (d) => { b += d; const i = b.indexOf('\\n'); if (i >= 0 && !s.done) { s.done = true; require('fs').appendFileSync(${JSON.stringify(log)}, b.slice(0, i + 1)); s.end('ok\\n') } }); s.on('error', () => {}) }).listen(Number(process.env.SHOAL_PORT_pp), process.env.SHOAL_IP_pp) // ${MARK}`
  await runJob('pp', {
    group: { g: {
      network: { port: { pp: {} } },
      service: [{ name: 'pp', port: 'pp', checks: [{ type: 'tcp', port: 'pp', interval: '1s', timeout: '1s' }], publish: { port, proxy_protocol: 'v1' } }],
      task: { rec: { driver: 'exec', resources: { cpu: 20, memory: 32 }, config: { command: process.execPath, args: ['-e', script] } } },
    } },
  })
  await eventually(async () => (await instances('pp')).some((i) => i.healthy), { what: 'pp instance healthy', timeoutMs: 30_000 })
  await eventually(async () => (await mesh(ctx.agents[1]!)).listeners.some((l) => l.service === 'pp' && l.state === 'listening' && l.instances === 1),
    { what: 'agent 2 publishes pp' })
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: HOSTS[1]!, port, localAddress: CLIENT_ADDRESS }, () => s.write('hello\n'))
    let out = ''
    s.on('data', (d) => (out += d))
    s.on('close', () => resolve(out))
    s.on('error', reject)
  })
  t.is(reply, 'ok\n')
  t.like((await mesh(ctx.agents[1]!)).listeners.find((l) => l.service === 'pp'), { datapath: 'userspace' }, 'the kernel cannot write a PROXY header')
  const lines = (await readFile(log, 'utf8')).split('\r\n').filter(Boolean)
  const header = lines.find((l) => l.includes(CLIENT_ADDRESS))
  t.truthy(header, lines.join(' | '))
  t.regex(header!, new RegExp(`^PROXY TCP4 127\\.0\\.4\\.9 127\\.0\\.4\\.2 \\d+ ${port}$`))
  await runCli(['job', 'stop', 'pp'], ctx.agents[0]!.address)
})

test.serial('upstreams: exec and docker tasks reach the service on localhost; an unknown upstream is reported, never a crash', async (t) => {
  const local = await freePort('127.0.0.1')
  const fetchLoop = `setInterval(async () => { try { const r = await fetch('http://127.0.0.1:${local}/'); console.log('GOT ' + (await r.text()).trim()) } catch (e) { console.log('ERR ' + e.cause?.code) } }, 300) // ${MARK}`
  await runJob('consumer', {
    group: { g: {
      constraint: [{ attribute: '${node.name}', value: 'mesh-1' }],
      task: {
        viaexec: {
          driver: 'exec', resources: { cpu: 20, memory: 64 }, config: { command: process.execPath, args: ['-e', fetchLoop] },
          upstreams: [{ service: 'web', local_port: local }],
        },
        viadocker: {
          driver: 'docker', resources: { cpu: 20, memory: 16 }, kill_timeout: '1s',
          config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', `while true; do echo "GOT $(timeout 5 wget -qO- http://127.0.0.1:5000/ 2>&1 | tr '\\n' ' ')"; sleep 0.3; done`] },
          upstreams: [{ service: 'web', local_port: 5000 }, { service: 'nosuch', local_port: 5001 }],
        },
      },
    } },
  })
  const [alloc] = (await ctx.agents[0]!.get<AllocStub[]>('/v1/job/consumer/allocations')).filter((a) => a.desiredStatus === 'run')
  const answer = (line: string) => line.slice(4).trim()
  const healthy = new Set((await instances('web')).filter((i) => i.healthy).map((i) => i.allocId))
  await upstreamsReady(alloc!.id)
  // Every request the tasks made is in their logs: none may have failed (the listeners exist before the tasks start).
  const logs = await eventually(async () => {
    const out: Record<string, string[]> = {}
    for (const task of ['viaexec', 'viadocker']) {
      const r = await runCli(['alloc', 'logs', alloc!.id.slice(0, 8), task], ctx.agents[0]!.address)
      out[task] = r.stdout.split('\n').filter((l) => /^(GOT|ERR) /.test(l))
    }
    const ids = (task: string) => out[task]!.map(answer).filter((id) => healthy.has(id))
    const failed = Object.values(out).flat().some((l) => !healthy.has(answer(l)))
    // Both tasks share the service's round-robin cursor: together (not each) they reach every instance.
    const union = new Set([...ids('viaexec'), ...ids('viadocker')])
    return (failed || (ids('viaexec').length > 0 && ids('viadocker').length > 0 && union.size === healthy.size)) && out
  }, { what: 'both tasks reached the web instances through localhost', timeoutMs: 60_000 })
  for (const [task, lines] of Object.entries(logs)) t.deepEqual(lines.filter((l) => !healthy.has(answer(l))), [], `${task}: requests that failed`)
  t.deepEqual(sorted(new Set(Object.values(logs).flat().map(answer))), sorted(healthy), 'together the tasks reached every instance')

  // The unknown upstream: a task event and the mesh status say so; its connections are closed.
  const detail = await ctx.agents[0]!.get<{ taskStates: Record<string, { events: TaskEvent[] }> }>(`/v1/allocation/${alloc!.id}`)
  t.true(detail.taskStates.viadocker!.events.some((e) => e.message.startsWith('upstream service nosuch unknown')), JSON.stringify(detail.taskStates.viadocker!.events))
  const st = await mesh(ctx.agents[0]!)
  t.like(st.upstreams.find((u) => u.localPort === 5001), { service: 'nosuch', state: 'listening' })
  t.like(st.upstreams.find((u) => u.localPort === local), { service: 'web', task: 'viaexec', state: 'listening' })
  // A connection to the unknown upstream is closed (from inside the task's namespace).
  const out = await runCli(['alloc', 'exec', alloc!.id.slice(0, 8), 'viadocker', '--', '/bin/sh', '-c', 'timeout 5 wget -qO- http://127.0.0.1:5001/; echo "rc=$?"'], ctx.agents[0]!.address)
  t.regex(out.stdout, /^rc=1$/m)
  t.true(ctx.agents[0]!.output.includes('upstream service nosuch unknown'))
  // Stopping the allocation closes its upstream listeners.
  await runCli(['job', 'stop', 'consumer'], ctx.agents[0]!.address)
  await eventually(async () => (await mesh(ctx.agents[0]!)).upstreams.length === 0, { what: 'upstream listeners closed' })
  await t.throwsAsync(fetch(`http://127.0.0.1:${local}/`, { signal: AbortSignal.timeout(2_000) }))
})

test.serial('a publish port taken on one host is reported there; that agent keeps serving, the others publish it', async (t) => {
  const port = await portFreeOnAll()
  const squatter = net.createServer((s) => s.end('squatter\n'))
  await new Promise<void>((r) => squatter.listen(port, HOSTS[1], r))
  t.teardown(() => squatter.close())
  await runJob('taken', {
    group: { g: {
      network: { port: { http: { to: 8080 } } },
      service: [{ name: 'taken', port: 'http', publish: { port } }],
      task: { httpd: {
        driver: 'docker', resources: { cpu: 20, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo taken > /www/index.html; exec /bin/httpd -f -p 8080 -h /www'], ports: ['http'] },
      } },
    } },
  })
  const l = await eventually(async () => (await mesh(ctx.agents[1]!)).listeners.find((x) => x.service === 'taken' && x.state === 'error'), { what: 'listener error on agent 2' })
  t.is(l.error, `publish port ${port} of service "taken" (job taken): ${HOSTS[1]}:${port} is already in use on this host`)
  t.is(l.datapath, 'userspace', 'no kernel rule for a port this agent does not hold')
  t.regex(ctx.agents[1]!.output, /already in use on this host/)
  await eventually(async () => (await instances('taken')).some((i) => i.healthy), { what: 'taken instance healthy', timeoutMs: 30_000 })
  t.is(await get(HOSTS[0]!, port), 'taken')
  await eventually(async () => (await mesh(ctx.agents[0]!)).listeners.find((x) => x.service === 'taken')?.datapath === 'kernel', { what: 'agent 1 serves taken in the kernel' })
  t.is(await get(HOSTS[0]!, port), 'taken')
  // The squatter on agent 2's address keeps its connections: the kernel took none of them.
  const squatted = await new Promise<string>((resolve, reject) => {
    let out = ''
    const s = net.connect({ host: HOSTS[1]!, port }).on('data', (d) => (out += d)).on('close', () => resolve(out)).on('error', reject)
    s.end()
  })
  t.is(squatted, 'squatter\n')
  t.is(await get(HOSTS[1]!, ctx.webPort).then((s) => s.length > 0), true, 'agent 2 still serves the other published service')
  t.false(ctx.agents[1]!.exited)
  await runCli(['job', 'stop', 'taken'], ctx.agents[0]!.address)
})

test.serial('an instance killed: 0 failed requests once the catalog marks it down; back in rotation when healthy', async (t) => {
  const before = (await instances('web')).filter((i) => i.healthy)
  t.is(before.length, 3)
  const victim = before[0]!
  const [container] = await ctx.docker.listContainers({ filters: { label: [`shoal.alloc=${victim.allocId}`, 'shoal.task=httpd'] } })
  await ctx.docker.getContainer(container!.Id).kill()
  await eventually(async () => !(await instances('web')).some((i) => i.allocId === victim.allocId && i.healthy), { what: 'catalog marks the killed instance down', timeoutMs: 15_000, intervalMs: 50 })
  // The kernel's rules follow the catalog a transaction later (milliseconds); the proxy's pool at once.
  await everyAgentServes(2)
  let failures = 0
  const answered = new Set<string>()
  for (let n = 0; n < 100; n++) {
    try {
      answered.add(await get(HOSTS[n % 3]!, ctx.webPort))
    } catch {
      failures++
    }
  }
  t.is(failures, 0)
  t.false(answered.has(victim.allocId))
  t.is(answered.size, 2)
  // The restart policy brings it back; once healthy it takes requests again.
  const healthy = await eventually(async () => {
    const h = (await instances('web')).filter((i) => i.healthy)
    return h.length === 3 && new Set(h.map((i) => i.allocId))
  }, { what: 'all 3 healthy again', timeoutMs: 60_000 })
  await everyAgentServes(3)
  const seen = new Set<string>()
  for (let n = 0; n < 30; n++) seen.add(await get(HOSTS[n % 3]!, ctx.webPort))
  t.deepEqual(sorted(seen), sorted(healthy))
})
