// Service discovery on a real 3-agent cluster with real busybox httpd containers:
// the catalog (API and CLI), health from service checks, DNS on every agent
// (node:dns resolver, TCP, malformed packets, forwarding), a blocking query and
// the event stream seeing an instance go, and bad service blocks refused.
import test from 'ava'
import dnsPacket from 'dns-packet'
import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { connect } from 'node:net'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'
import type { ServiceInstance, ServiceSummary } from '../../src/structs/index.ts'

const HOSTS = ['127.0.3.1', '127.0.3.2', '127.0.3.3']

const webJob = {
  job: { 'svc-web': { group: { fe: {
    count: 3,
    constraint: [{ operator: 'distinct_hosts' }],
    network: { port: { http: { to: 80 } } },
    restart: { attempts: 5, interval: '5m', delay: '3s', mode: 'fail' },
    service: [{ name: 'web', port: 'http', tags: ['v1', 'blue'],
      checks: [{ type: 'http', path: '/', interval: '500ms', timeout: '1s', retries: 2 }],
      publish: { port: 18080 } }],
    task: { httpd: {
      driver: 'docker',
      config: { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '80', '-h', '/www'], ports: ['http'] },
      resources: { cpu: 50, memory: 16 },
      kill_timeout: '1s',
    } },
  } } } },
}

function resolver(server: string): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 2 })
  r.setServers([server])
  return r
}

/** One raw UDP exchange: the reply's bytes, or undefined when none came within `ms`. */
function udpExchange(host: string, port: number, bytes: Buffer, ms = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4')
    const timer = setTimeout(() => { s.close(); resolve(undefined) }, ms)
    s.on('message', (m) => { clearTimeout(timer); s.close(); resolve(m) })
    s.send(bytes, port, host)
  })
}

/** One DNS query over TCP (2-byte length prefix). */
function tcpQuery(host: string, port: number, packet: dnsPacket.Packet): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => socket.write(dnsPacket.streamEncode(packet)))
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        socket.destroy()
        resolve(dnsPacket.streamDecode(buf) as dnsPacket.DecodedPacket)
      }
    })
    socket.on('error', reject)
    socket.setTimeout(3000, () => { socket.destroy(); reject(new Error('tcp dns timeout')) })
  })
}

async function getWithIndex<T>(agent: AgentProcess, path: string, signal?: AbortSignal): Promise<{ body: T; index: number }> {
  const res = await fetch(agent.address + path, signal ? { signal } : {})
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return { body: (await res.json()) as T, index: Number(res.headers.get('x-shoal-index')) }
}

test('3 agents: a 3-instance service is discovered with health; a killed container leaves it; bad service blocks are refused', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('services')
  const binds = await Promise.all(HOSTS.map(async (h) => `${h}:${await freePort(h)}`))
  const agents: AgentProcess[] = []
  const nodeIds: string[] = []
  // A stand-in upstream resolver for the third agent's --dns-recursor: every name is 10.9.8.7.
  const upstream = createSocket('udp4')
  upstream.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg)
    upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions,
      answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: '10.9.8.7' }] }), rinfo.port, rinfo.address)
  })
  await new Promise<void>((r) => upstream.bind(0, HOSTS[2], () => r()))
  t.teardown(() => upstream.close())
  t.teardown(async () => {
    await runCli(['job', 'stop', 'svc-web'], agents[0]?.address, 30_000).catch(() => undefined)
    for (const a of agents) await a.kill()
    for (const id of nodeIds) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${id}`] } })) {
        await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
      }
    }
    await rm(dir, { recursive: true, force: true })
  })
  for (const [i, bind] of binds.entries()) {
    agents.push(await AgentProcess.start({
      dataDir: join(dir, `n${i + 1}`), name: `svc-n${i + 1}`, bind, httpPort: await freePort(), dev: false,
      ...(i > 0 ? { join: [binds[0]!] } : {}),
      ...(i === 2 ? { extraArgs: ['--dns-recursor', `${HOSTS[2]}:${upstream.address().port}`] } : {}),
    }))
    nodeIds.push((await agents[i]!.get<{ nodeId: string }>('/v1/agent/self')).nodeId)
  }
  await eventually(async () => (await agents[0]!.get<{ status: string }[]>('/v1/nodes')).filter((n) => n.status === 'ready').length === 3,
    { what: '3 ready nodes', timeoutMs: 30_000 })

  const file = join(dir, 'web.json')
  await writeFile(file, JSON.stringify(webJob))
  const run = await runCli(['job', 'run', file, '--detach'], agents[1]!.address)
  t.is(run.code, 0, run.stdout + run.stderr)

  // Every agent lists 3 passing instances, one per node, on the node's address and the allocated host port.
  for (const a of agents) {
    await eventually(async () => {
      const list = await a.get<ServiceInstance[]>('/v1/service/web?passing')
      return list.length === 3 && list
    }, { what: `3 passing instances of web via ${a.options.name}`, timeoutMs: 60_000 })
  }
  const instances = await agents[2]!.get<ServiceInstance[]>('/v1/service/web')
  t.deepEqual(instances.map((i) => i.nodeName).sort(), ['svc-n1', 'svc-n2', 'svc-n3'])
  const allocs = await agents[0]!.get<{ id: string; nodeName: string; ports: { label: string; value: number; hostIp: string }[] }[]>('/v1/job/svc-web/allocations')
  for (const i of instances) {
    const host = HOSTS[Number(i.nodeName.slice(-1)) - 1]
    t.is(i.address, host)
    const alloc = allocs.find((a) => a.id === i.allocId)!
    t.is(i.port, alloc.ports.find((p) => p.label === 'http')!.value)
    t.deepEqual(i.tags, ['v1', 'blue'])
    t.is(i.status, 'passing')
    t.true(i.healthy)
    t.is(i.jobId, 'svc-web')
    const res = await fetch(`http://${i.address}:${i.port}/`)
    t.is(res.status, 200)
  }
  const services = await agents[0]!.get<ServiceSummary[]>('/v1/services')
  t.like(services.find((s) => s.name === 'web'), { healthy: 3, total: 3, tags: ['blue', 'v1'], jobs: ['svc-web'] })

  // CLI.
  const list = await runCli(['service', 'list'], agents[1]!.address)
  t.is(list.code, 0, list.stderr)
  t.regex(list.stdout, /web\s+3\/3\s+blue,v1\s+svc-web/)
  const info = await runCli(['service', 'info', 'web', '--json'], agents[2]!.address)
  t.is(info.code, 0, info.stderr)
  t.is((JSON.parse(info.stdout) as { instances: ServiceInstance[] }).instances.length, 3)
  const text = await runCli(['service', 'info', 'web'], agents[2]!.address)
  for (const i of instances) t.true(text.stdout.includes(`${i.address}:${i.port}`), text.stdout)
  const missing = await runCli(['service', 'info', 'nope'], agents[0]!.address)
  t.is(missing.code, 4)
  t.regex(missing.stderr, /service "nope" not found \(services: web\)/)

  // DNS on every agent (default address: the bind host, port 8600): A and SRV of the healthy instances.
  for (const [n, a] of agents.entries()) {
    const dns = (await a.get<{ dns: string }>('/v1/agent/self')).dns
    t.is(dns, `${HOSTS[n]}:8600`)
    const r = resolver(dns)
    t.deepEqual((await r.resolve4('web.service.shoal')).sort(), [...HOSTS].sort())
    const srv = await r.resolveSrv('_web._tcp.service.shoal')
    t.deepEqual(srv.map((x) => x.port).sort(), instances.map((i) => i.port).sort())
    for (const x of srv) {
      const inst = instances.find((i) => i.port === x.port)!
      t.deepEqual(await r.resolve4(x.name), [inst.address], `SRV target ${x.name} resolves to its instance's address`)
    }
    t.deepEqual((await r.resolve4('blue.web.service.shoal')).length, 3)
    await t.throwsAsync(r.resolve4('red.web.service.shoal'), { code: 'ENODATA' })
    await t.throwsAsync(r.resolve4('nope.service.shoal'), { code: 'ENOTFOUND' }, 'unknown service: NXDOMAIN')
  }
  // Other names: refused by default, forwarded with --dns-recursor.
  await t.throwsAsync(resolver(`${HOSTS[0]}:8600`).resolve4('example.com'), { code: 'EREFUSED' })
  t.deepEqual(await resolver(`${HOSTS[2]}:8600`).resolve4('example.com'), ['10.9.8.7'])
  // TCP.
  const overTcp = await tcpQuery(HOSTS[1]!, 8600, { type: 'query', id: 77, questions: [{ type: 'SRV', name: '_web._tcp.service.shoal' }] })
  t.is(overTcp.id, 77)
  t.is(overTcp.answers!.length, 3)
  // Malformed packets: FORMERR with the query's id (header readable), nothing for a stub; the agent keeps serving.
  const garbage = Buffer.from([0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x61, 0x62])
  const formerr = await udpExchange(HOSTS[0]!, 8600, garbage)
  t.like(formerr && dnsPacket.decode(formerr), { id: 0xbeef, type: 'response', rcode: 'FORMERR' })
  t.is(await udpExchange(HOSTS[0]!, 8600, Buffer.from([1, 2, 3]), 500), undefined)
  const noQuestion = await udpExchange(HOSTS[0]!, 8600, dnsPacket.encode({ type: 'query', id: 5, questions: [] }))
  t.like(noQuestion && dnsPacket.decode(noQuestion), { id: 5, rcode: 'FORMERR' })
  t.is((await resolver(`${HOSTS[0]}:8600`).resolve4('web.service.shoal')).length, 3, 'still serving after malformed packets')

  // A blocking query and the event stream, both waiting for the next change of "web".
  const { index } = await getWithIndex<ServiceInstance[]>(agents[1]!, '/v1/service/web')
  t.true(index > 0)
  const blocking = getWithIndex<ServiceInstance[]>(agents[1]!, `/v1/service/web?index=${index}&wait=60s`)
  const listIndex = (await getWithIndex<ServiceSummary[]>(agents[0]!, '/v1/services')).index
  const blockingList = getWithIndex<ServiceSummary[]>(agents[0]!, `/v1/services?index=${listIndex}&wait=60s`)
  const streamAbort = new AbortController()
  t.teardown(() => streamAbort.abort())
  const stream = await fetch(`${agents[2]!.address}/v1/event/stream?topic=service:web`, { signal: streamAbort.signal })
  t.is(stream.headers.get('content-type'), 'application/x-ndjson')
  const events: { topic: string; key: string; index: number; payload: { instances: ServiceInstance[] } }[] = []
  void (async () => {
    let buf = ''
    for await (const chunk of stream.body!) {
      buf += Buffer.from(chunk).toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        const e = JSON.parse(line) as (typeof events)[number]
        if (e.topic) events.push(e)
      }
    }
  })().catch(() => undefined)
  // Nothing changed yet: the blocking query is still waiting.
  t.is(await Promise.race([blocking.then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 1000))]), 'waiting')

  // Kill one instance's container: it leaves the passing set promptly.
  const victim = instances[0]!
  const [container] = await docker.listContainers({ filters: { label: [`shoal.alloc=${victim.allocId}`] } })
  const killedAt = Date.now()
  await docker.getContainer(container!.Id).kill()
  const answered = await blocking
  t.true(answered.index > index)
  const answeredList = await blockingList
  t.true(answeredList.index > listIndex)
  t.true(answeredList.body.find((x) => x.name === 'web')!.healthy < 3)
  t.false(answered.body.some((i) => i.allocId === victim.allocId && i.healthy), JSON.stringify(answered.body))
  const gone = await eventually(async () => {
    const list = await agents[0]!.get<ServiceInstance[]>('/v1/service/web?passing')
    return !list.some((i) => i.allocId === victim.allocId) && list
  }, { what: 'killed instance out of the passing set', timeoutMs: 10_000 })
  t.is(gone.length, 2)
  t.log(`instance left the passing set ${Date.now() - killedAt} ms after docker kill`)
  const dnsLeft = await eventually(async () => {
    const addrs = await resolver(`${HOSTS[1]}:8600`).resolve4('web.service.shoal')
    return !addrs.includes(victim.address) && addrs
  }, { what: 'DNS without the killed instance', timeoutMs: 10_000 })
  t.is(dnsLeft.length, 2)
  t.log(`DNS answered without it ${Date.now() - killedAt} ms after docker kill`)
  await eventually(async () => events.some((e) => e.key === 'web' && !e.payload.instances.some((i) => i.allocId === victim.allocId && i.healthy)),
    { what: 'an event for the change', timeoutMs: 10_000 })
  t.true(events.every((e) => e.topic === 'service' && e.key === 'web'))

  // The restart policy brings it back; it passes its check again.
  await eventually(async () => (await agents[2]!.get<ServiceInstance[]>('/v1/service/web?passing')).some((i) => i.allocId === victim.allocId),
    { what: 'restarted instance passing again', timeoutMs: 30_000 })

  // Bad input: field paths through the CLI and the API; a port another job publishes is refused.
  const bad = { job: { 'svc-bad': { group: { g: {
    network: { port: { http: {} } },
    service: [{ name: 'Bad_Name', port: 'htp', publish: { port: 70000, balance: 'random' } }],
    task: { t: { driver: 'exec', config: { command: '/bin/sleep', args: ['60'] },
      service: [{ name: 'api', port: 'http', checks: [{ type: 'http', path: 'x' }] }], upstreams: [{ service: 'db' }] } },
  } } } } }
  const badFile = join(dir, 'bad.json')
  await writeFile(badFile, JSON.stringify(bad))
  const badRun = await runCli(['job', 'run', badFile], agents[0]!.address)
  t.not(badRun.code, 0)
  for (const field of [
    'job.svc-bad.group.g.service[0].name', 'job.svc-bad.group.g.service[0].port', 'job.svc-bad.group.g.service[0].publish.port',
    'job.svc-bad.group.g.service[0].publish.balance', 'job.svc-bad.group.g.task.t.service[0].checks[0].path',
    'job.svc-bad.group.g.task.t.upstreams[0].local_port',
  ]) t.true(badRun.stderr.includes(field), `${field} in:\n${badRun.stderr}`)
  const apiBad = await fetch(`${agents[1]!.address}/v1/jobs`, { method: 'POST', body: JSON.stringify(bad) })
  t.is(apiBad.status, 400)
  const apiBody = (await apiBad.json()) as { field: string; errors: { field: string }[] }
  t.is(apiBody.field, 'job.svc-bad.group.g.service[0].name')
  t.true(apiBody.errors.length >= 6)

  const clash = { job: { 'svc-clash': { group: { g: {
    network: { port: { http: {} } },
    task: { t: { driver: 'exec', config: { command: '/bin/sleep', args: ['60'] }, service: [{ name: 'other', port: 'http', publish: { port: 18080 } }] } },
  } } } } }
  const clashFile = join(dir, 'clash.json')
  await writeFile(clashFile, JSON.stringify(clash))
  const clashRun = await runCli(['job', 'run', clashFile], agents[2]!.address)
  t.not(clashRun.code, 0)
  t.regex(clashRun.stderr, /job\.svc-clash\.group\.g\.task\.t\.service\[0\]\.publish\.port: port 18080 is already published by service "web" of job "svc-web"/)
  t.is((await fetch(`${agents[2]!.address}/v1/job/svc-clash`)).status, 404)
  const clashPlan = await runCli(['job', 'plan', clashFile], agents[0]!.address)
  t.not(clashPlan.code, 0)
  t.regex(clashPlan.stderr, /publish\.port: port 18080 is already published by service "web" of job "svc-web"/)

  const twice = { job: { 'svc-twice': { group: { g: {
    network: { port: { a: {}, b: {} } },
    service: [{ name: 'one', port: 'a', publish: { port: 18090 } }, { name: 'two', port: 'b', publish: { port: 18090 } }],
    task: { t: { driver: 'exec', config: { command: '/bin/sleep', args: ['60'] } } },
  } } } } }
  const twiceRes = await fetch(`${agents[0]!.address}/v1/jobs`, { method: 'POST', body: JSON.stringify(twice) })
  t.is(twiceRes.status, 400)
  t.regex(((await twiceRes.json()) as { error: string }).error, /service\[1\]\.publish\.port: port 18090 is already published by service "one"/)

  // Stopping the job empties the catalog.
  t.is((await runCli(['job', 'stop', 'svc-web'], agents[0]!.address, 30_000)).code, 0)
  await eventually(async () => (await agents[1]!.get<ServiceInstance[]>('/v1/service/web')).length === 0, { what: 'no instances after job stop', timeoutMs: 30_000 })
})
