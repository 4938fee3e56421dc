// The mesh's pure cores (balancer, PROXY headers, listener sets) and the
// proxy over real sockets with a catalog given by the test; which ports the
// kernel data path takes, with a fake of the kernel's rules.
import net from 'node:net'
import test from 'ava'
import { Balancer, Ejections, type Backend } from '../../src/mesh/balancer.ts'
import { desiredListeners, diffListeners, type PublishSpec } from '../../src/mesh/listeners.ts'
import { Mesh, type KernelRules, type MeshCatalog } from '../../src/mesh/mesh.ts'
import type { NatPort, NatState } from '../../src/mesh/nat-rules.ts'
import { proxyV1Header, proxyV2Header } from '../../src/mesh/proxy-protocol.ts'

const b = (key: string): Backend => ({ key, address: '127.0.0.1', port: 1 })
const none = () => 0
const never = () => false

test('round-robin takes turns and skips excluded backends', (t) => {
  const bal = new Balancer()
  const bs = [b('a'), b('b'), b('c')]
  const picks = Array.from({ length: 6 }, () => bal.pick(bs, 'round-robin', never, none)!.key)
  t.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c'])
  t.is(bal.pick(bs, 'round-robin', (k) => k === 'a', none)!.key, 'b')
  t.is(bal.pick(bs, 'round-robin', (k) => ['a', 'b', 'c'].includes(k), none), undefined)
  t.is(bal.pick([], 'round-robin', never, none), undefined)
})

test('round-robin survives the instance list shrinking', (t) => {
  const bal = new Balancer()
  const bs = [b('a'), b('b'), b('c')]
  bal.pick(bs, 'round-robin', never, none)
  bal.pick(bs, 'round-robin', never, none)
  bal.pick(bs, 'round-robin', never, none)
  const two = [b('a'), b('b')]
  const picks = Array.from({ length: 4 }, () => bal.pick(two, 'round-robin', never, none)!.key)
  t.deepEqual(picks.sort(), ['a', 'a', 'b', 'b'])
})

test('least-conn picks the backend with the fewest open connections; ties take turns', (t) => {
  const bal = new Balancer()
  const bs = [b('a'), b('b'), b('c')]
  const active = new Map([['a', 3], ['b', 1], ['c', 2]])
  t.is(bal.pick(bs, 'least-conn', never, (k) => active.get(k)!)!.key, 'b')
  t.is(bal.pick(bs, 'least-conn', (k) => k === 'b', (k) => active.get(k)!)!.key, 'c')
  const tie = Array.from({ length: 3 }, () => bal.pick(bs, 'least-conn', never, none)!.key)
  t.deepEqual([...tie].sort(), ['a', 'b', 'c'])
})

test('ejections expire', (t) => {
  const e = new Ejections(1000)
  e.eject('a', 0)
  t.true(e.has('a', 999))
  t.false(e.has('b', 999))
  t.false(e.has('a', 1000))
  t.is(e.size, 0, 'an expired ejection is forgotten')
})

test('PROXY v1 header: TCP4, TCP6, IPv4-mapped, unknown', (t) => {
  const a = { sourceAddress: '192.168.1.5', sourcePort: 51000, destinationAddress: '10.0.0.1', destinationPort: 8080 }
  t.is(proxyV1Header(a).toString(), 'PROXY TCP4 192.168.1.5 10.0.0.1 51000 8080\r\n')
  t.is(proxyV1Header({ ...a, sourceAddress: '::ffff:192.168.1.5', destinationAddress: '::ffff:10.0.0.1' }).toString(), 'PROXY TCP4 192.168.1.5 10.0.0.1 51000 8080\r\n')
  t.is(proxyV1Header({ ...a, sourceAddress: '2001:db8::1', destinationAddress: '::1' }).toString(), 'PROXY TCP6 2001:db8::1 ::1 51000 8080\r\n')
  t.is(proxyV1Header(null).toString(), 'PROXY UNKNOWN\r\n')
})

test('PROXY v2 header: signature, command, family, addresses, ports', (t) => {
  const h = proxyV2Header({ sourceAddress: '192.168.1.5', sourcePort: 51000, destinationAddress: '10.0.0.1', destinationPort: 8080 })
  t.is(h.length, 28)
  t.deepEqual([...h.subarray(0, 12)], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
  t.is(h[12], 0x21)
  t.is(h[13], 0x11)
  t.is(h.readUInt16BE(14), 12)
  t.deepEqual([...h.subarray(16, 20)], [192, 168, 1, 5])
  t.deepEqual([...h.subarray(20, 24)], [10, 0, 0, 1])
  t.is(h.readUInt16BE(24), 51000)
  t.is(h.readUInt16BE(26), 8080)
  const h6 = proxyV2Header({ sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::ffff:10.0.0.1', destinationPort: 2 })
  t.is(h6[13], 0x21)
  t.is(h6.readUInt16BE(14), 36)
  t.is(h6.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001')
  t.is(h6.subarray(32, 48).toString('hex'), '00000000000000000000ffff0a000001')
  const local = proxyV2Header(null)
  t.is(local.length, 16)
  t.is(local[12], 0x20)
})

const spec = (service: string, port: number, jobId = service, extra: Partial<PublishSpec> = {}): PublishSpec =>
  ({ service, jobId, port, balance: 'round-robin', mode: 'tcp', ...extra })

test('one listener per port: the older job keeps a contested port, the other is a conflict naming both', (t) => {
  const { listeners, conflicts } = desiredListeners([spec('web', 8080, 'a'), spec('api', 8080, 'b'), spec('web', 8080, 'c'), spec('db', 9000)])
  t.deepEqual([...listeners.keys()], [8080, 9000])
  t.is(listeners.get(8080)!.service, 'web')
  t.is(conflicts.length, 1, 'the same service with the same settings shares the listener')
  t.is(conflicts[0]!.message, 'publish port 8080 of service "api" (job b) is already published by service "web" (job a)')
  const other = desiredListeners([spec('web', 8080, 'a'), spec('web', 8080, 'c', { balance: 'least-conn' })])
  t.regex(other.conflicts[0]!.message, /already published by service "web" with other settings \(job a\)/)
})

test('listener diff: open, close, change in place', (t) => {
  const current = new Map([[8080, spec('web', 8080)], [9000, spec('db', 9000)]])
  const desired = new Map([[8080, spec('web', 8080, 'web', { proxyProtocol: 'v1' })], [7000, spec('api', 7000)]])
  const d = diffListeners(current, desired)
  t.deepEqual(d.open.map((s) => s.port), [7000])
  t.deepEqual(d.close, [9000])
  t.deepEqual(d.update.map((s) => s.port), [8080])
  t.deepEqual(diffListeners(desired, desired), { open: [], close: [], update: [] })
})

// ---- real sockets ----

class FakeCatalog implements MeshCatalog {
  specs: PublishSpec[] = []
  instances = new Map<string, Backend[]>()
  published() { return this.specs }
  backends(s: string) { return this.instances.get(s) ?? [] }
  known(s: string) { return this.instances.has(s) }
}

const quiet = { info: () => undefined, warn: () => undefined }

/** A backend that answers every connection with its name and the first line it received. */
async function echoBackend(host: string, name: string): Promise<{ server: net.Server; backend: Backend; firstLines: string[]; received: string[] }> {
  const firstLines: string[] = []
  const received: string[] = []
  const server = net.createServer((s) => {
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString('latin1')
      // The client's line ends the request (a v2 PROXY header holds newlines of its own).
      if (buf.endsWith('hello\n') || buf.endsWith('hi\n')) {
        firstLines.push(buf.slice(0, buf.indexOf('\n') + 1))
        received.push(buf)
        s.end(`${name}\n`)
      }
    })
    s.on('error', () => undefined)
  })
  await new Promise<void>((r) => server.listen(0, host, r))
  const port = (server.address() as net.AddressInfo).port
  return { server, backend: { key: `${name}/${host}:${port}`, address: host, port }, firstLines, received }
}

function ask(host: string, port: number, line = 'hello\n'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => s.write(line))
    let out = ''
    s.on('data', (d) => (out += d.toString()))
    s.on('end', () => resolve(out.trim()))
    s.on('error', reject)
    s.on('close', () => resolve(out.trim()))
  })
}

async function freeMeshPort(host: string): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, host, r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

test('the mesh proxies to every instance, retries a dead one, and counts', async (t) => {
  const host = '127.0.4.201'
  const one = await echoBackend(host, 'one')
  const two = await echoBackend(host, 'two')
  const dead: Backend = { key: 'dead', address: host, port: await freeMeshPort(host) }
  const port = await freeMeshPort(host)
  const catalog = new FakeCatalog()
  catalog.specs = [spec('web', port)]
  catalog.instances.set('web', [one.backend, dead, two.backend])
  const mesh = new Mesh({ catalog, bindHost: host, log: quiet })
  t.teardown(() => { void mesh.close(); one.server.close(); two.server.close() })
  mesh.refresh()
  await new Promise((r) => setTimeout(r, 50))
  const answers = []
  for (let i = 0; i < 9; i++) answers.push(await ask(host, port))
  t.deepEqual(new Set(answers), new Set(['one', 'two']), 'the dead instance never surfaces to a client')
  const st = mesh.status()
  t.like(st.listeners[0], { service: 'web', port, state: 'listening', instances: 3 })
  t.like(st.services.web, { requests: 9, failures: 0 })
  // The catalog drops an instance: it is out of rotation at once.
  catalog.instances.set('web', [two.backend])
  mesh.refresh()
  for (let i = 0; i < 4; i++) t.is(await ask(host, port), 'two')
  // No instance: the connection is closed, counted as a failure.
  catalog.instances.set('web', [])
  mesh.refresh()
  t.is(await ask(host, port), '')
  t.is(mesh.status().services.web!.failures, 1)
  t.is(mesh.status().services.web!.activeConnections, 0)
})

test('PROXY protocol v1 and v2 reach the backend before the client bytes', async (t) => {
  const host = '127.0.4.202'
  const be = await echoBackend(host, 'be')
  const p1 = await freeMeshPort(host)
  const p2 = await freeMeshPort(host)
  const catalog = new FakeCatalog()
  catalog.specs = [spec('v1svc', p1, 'j1', { proxyProtocol: 'v1' }), spec('v2svc', p2, 'j2', { proxyProtocol: 'v2' })]
  catalog.instances.set('v1svc', [be.backend])
  catalog.instances.set('v2svc', [be.backend])
  const mesh = new Mesh({ catalog, bindHost: host, log: quiet })
  t.teardown(() => { void mesh.close(); be.server.close() })
  mesh.refresh()
  await new Promise((r) => setTimeout(r, 50))
  // Connect from a chosen source address so the header has something to prove.
  const fromAddress = '127.0.4.203'
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host, port: p1, localAddress: fromAddress }, () => s.write('hi\n'))
    s.on('close', () => resolve())
    s.on('error', reject)
    s.resume()
  })
  t.regex(be.firstLines[0]!, new RegExp(`^PROXY TCP4 127\\.0\\.4\\.203 127\\.0\\.4\\.202 \\d+ ${p1}\\r\\n$`))
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host, port: p2, localAddress: fromAddress }, () => s.write('hi\n'))
    s.on('close', () => resolve())
    s.on('error', reject)
    s.resume()
  })
  const v2 = Buffer.from(be.received[1]!, 'latin1')
  t.is(v2.subarray(28).toString(), 'hi\n', 'the client bytes follow the header')
  t.is(v2[12], 0x21)
  t.deepEqual([...v2.subarray(16, 20)], [127, 0, 4, 203])
  t.is(v2.readUInt16BE(26), p2)
})

test('a publish port taken on the host is reported and retried; the other listeners serve', async (t) => {
  const host = '127.0.4.204'
  const be = await echoBackend(host, 'be')
  const squatter = net.createServer()
  await new Promise<void>((r) => squatter.listen(0, host, r))
  const taken = (squatter.address() as net.AddressInfo).port
  const free = await freeMeshPort(host)
  const catalog = new FakeCatalog()
  catalog.specs = [spec('a', taken), spec('b', free), spec('c', free)]
  catalog.instances.set('a', [be.backend])
  catalog.instances.set('b', [be.backend])
  const warnings: string[] = []
  const mesh = new Mesh({ catalog, bindHost: host, log: { info: () => undefined, warn: (m) => warnings.push(m) } })
  t.teardown(() => { void mesh.close(); be.server.close(); squatter.close() })
  mesh.refresh()
  await new Promise((r) => setTimeout(r, 100))
  const st = mesh.status()
  const a = st.listeners.find((l) => l.service === 'a')!
  t.is(a.state, 'error')
  t.is(a.error, `publish port ${taken} of service "a" (job a): ${host}:${taken} is already in use on this host`)
  t.like(st.listeners.find((l) => l.service === 'c'), { state: 'conflict' })
  t.true(warnings.some((w) => w.includes('already in use')))
  t.is(await ask(host, free), 'be')
  // Job gone: its listener (and its error) go too.
  catalog.specs = [spec('b', free)]
  mesh.refresh()
  t.deepEqual(mesh.status().listeners.map((l) => l.service), ['b'])
})

test('upstreams in the host namespace: shared per port and service, a clash and an unknown service are noted, detach closes', async (t) => {
  const host = '127.0.4.205'
  const be = await echoBackend(host, 'db-1')
  const catalog = new FakeCatalog()
  catalog.instances.set('db', [be.backend])
  const mesh = new Mesh({ catalog, bindHost: host, log: quiet })
  mesh.refresh()
  const { Upstreams } = await import('../../src/mesh/upstreams.ts')
  const ups = new Upstreams({ proxy: (s, sock) => mesh.proxy(s, sock), known: (s) => catalog.known(s), log: quiet })
  t.teardown(() => { ups.close(); void mesh.close(); be.server.close() })
  const local = await freeMeshPort('127.0.0.1')
  const other = await freeMeshPort('127.0.0.1')
  const notes: string[] = []
  const note = (task: string, type: string, message: string) => notes.push(`${task} ${type}: ${message}`)
  await ups.attach({ allocId: 'a1', upstreams: [{ task: 't', driver: 'exec', service: 'db', localPort: local }, { task: 't', driver: 'exec', service: 'nosuch', localPort: other }], note })
  await ups.attach({ allocId: 'a2', upstreams: [{ task: 'u', driver: 'exec', service: 'db', localPort: local }], note })
  await ups.attach({ allocId: 'a3', upstreams: [{ task: 'v', driver: 'exec', service: 'cache', localPort: local }], note })
  t.is(await ask('127.0.0.1', local), 'db-1')
  t.is(await ask('127.0.0.1', other), '', 'an unknown service: connection closed')
  t.deepEqual([...notes].sort(), [
    `t Upstream: upstream service nosuch unknown: connections to localhost:${other} are closed until a job defines it`,
    `v Upstream Failure: upstream cache on localhost:${local}: the port already carries upstream db on this host`,
    `v Upstream: upstream service cache unknown: connections to localhost:${local} are closed until a job defines it`,
  ].sort())
  t.like(ups.status().find((u) => u.allocId === 'a3'), { state: 'error' })
  // The listener is shared: it stays while a2 still wants it.
  ups.detach('a1')
  t.is(await ask('127.0.0.1', local), 'db-1')
  ups.detach('a2')
  await t.throwsAsync(ask('127.0.0.1', local))
  // A docker task's upstream with no group namespace cannot listen: noted.
  notes.length = 0
  await ups.attach({ allocId: 'a4', upstreams: [{ task: 'w', driver: 'docker', service: 'db', localPort: local }], note })
  t.is(notes[0], `w Upstream Failure: upstream db on localhost:${local}: the task has no network namespace of its group to listen in`)
})

/** The kernel's rules as the mesh drives them, without a kernel: every sync applies at once. */
class FakeKernel implements KernelRules {
  want: NatState = new Map()
  syncs = 0
  closed = false
  error: string | null = null
  sync(want: NatState): void {
    this.want = want
    this.syncs++
  }
  applied(port: number): NatPort | undefined {
    return this.want.get(port)
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

test('kernel data path: the rules follow the listeners the kernel can serve; the others stay on the proxy, with the reason', async (t) => {
  const host = '127.0.12.201'
  const be = await echoBackend(host, 'be')
  const squatter = net.createServer()
  await new Promise<void>((r) => squatter.listen(0, host, r))
  const taken = (squatter.address() as net.AddressInfo).port
  const [web, pp, lc] = [await freeMeshPort(host), await freeMeshPort(host), await freeMeshPort(host)]
  const catalog = new FakeCatalog()
  catalog.specs = [spec('web', web), spec('pp', pp, 'pp', { proxyProtocol: 'v1' }), spec('lc', lc, 'lc', { balance: 'least-conn' }), spec('taken', taken)]
  const other: Backend = { key: 'other', address: '127.0.12.202', port: 20002 }
  for (const s of ['web', 'pp', 'lc', 'taken']) catalog.instances.set(s, [be.backend, other])
  const kernel = new FakeKernel()
  const mesh = new Mesh({ catalog, bindHost: host, log: quiet })
  t.teardown(() => { void mesh.close(); be.server.close(); squatter.close() })
  mesh.useKernel(kernel)
  mesh.refresh()
  await new Promise((r) => setTimeout(r, 100))
  t.deepEqual([...kernel.want.keys()], [web], 'only the listening round-robin port without PROXY protocol')
  t.deepEqual(kernel.want.get(web), { port: web, service: 'web', backends: [{ address: be.backend.address, port: be.backend.port }, { address: '127.0.12.202', port: 20002 }] })
  const byService = (s: string) => mesh.status().listeners.find((l) => l.service === s)!
  t.like(byService('web'), { datapath: 'kernel', instances: 2 })
  t.like(byService('pp'), { datapath: 'userspace', datapathReason: 'proxy_protocol needs the user-space proxy (it writes a header)' })
  t.like(byService('lc'), { datapath: 'userspace', datapathReason: 'balance "least-conn" needs the user-space proxy (the kernel does not see open connections)' })
  t.like(byService('taken'), { state: 'error', datapath: 'userspace', datapathReason: 'the port is not bound' })

  // Whatever reaches the listener of a kernel port was counted by the dispatch rule: not again.
  catalog.instances.set('web', [be.backend])
  mesh.refresh()
  t.is(kernel.want.get(web)!.backends.length, 1, 'an instance gone: the rules follow')
  t.is(await ask(host, web), 'be')
  t.is(mesh.status().services.web!.requests, 0)
  t.is(mesh.status(new Map([['web', 5]])).services.web!.requests, 5)
  t.is(await ask(host, pp), 'be')
  t.is(mesh.status().services.pp!.requests, 1, 'the proxy counts its own ports')

  // An instance the kernel cannot dial (IPv6): the port keeps an empty chain, the proxy serves it.
  catalog.instances.set('web', [be.backend, { key: 'v6', address: '::1', port: 20003 }])
  mesh.refresh()
  t.deepEqual(kernel.want.get(web)!.backends, [])
  t.like(byService('web'), { datapath: 'userspace', datapathReason: 'an instance address is not IPv4', instances: 2 })
  // The job stops: its port leaves the rules.
  catalog.specs = [spec('pp', pp, 'pp', { proxyProtocol: 'v1' })]
  mesh.refresh()
  t.deepEqual([...kernel.want.keys()], [])
  await mesh.close()
  t.true(kernel.closed)
})
