// The DNS answer builder as a pure function: catalog + query → response.
import test from 'ava'
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet'
import { addrLabel, answerQuery, formErrFor, type AnswerOptions, type DnsCatalog } from '../../src/dns/answer.ts'
import type { ServiceInstance } from '../../src/structs/index.ts'

const inst = (allocId: string, address: string, port: number, over: Partial<ServiceInstance> = {}): ServiceInstance => ({
  service: 'web', allocId, jobId: 'j', group: 'g', nodeId: `n-${allocId}`, nodeName: allocId, address, port,
  tags: ['v1'], healthy: true, status: 'passing', ...over,
})

const services: Record<string, ServiceInstance[]> = {
  web: [
    inst('a', '10.0.0.1', 21000),
    inst('b', '10.0.0.2', 22000, { tags: ['v2'] }),
    inst('c', '10.0.0.2', 23000),
    inst('d', '10.0.0.4', 24000, { healthy: false, status: 'critical' }),
  ],
  v6: [inst('e', 'fd00::1', 25000, { service: 'v6' })],
  idle: [],
}
const catalog: DnsCatalog = { instances: (n) => services[n], serial: () => 42 }
const opts: AnswerOptions = { domain: 'shoal', ttl: 1, recursion: false }

/** Encodes and decodes, as a client's query arrives. */
function query(name: string, type: string, over: Packet = {}): DecodedPacket {
  return dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as RecordType, class: 'IN' }], ...over }))
}

function ask(name: string, type: string, o: Partial<AnswerOptions> = {}, over: Packet = {}) {
  const r = answerQuery(query(name, type, over), catalog, { ...opts, ...o })
  if (r.kind !== 'answer') throw new Error('forwarded')
  // What the client receives.
  return dnsPacket.decode(dnsPacket.encode(r.packet)) as DecodedPacket & { rcode: string }
}
const data = (answers: Answer[] | undefined) => (answers ?? []).map((a) => (a as { data: unknown }).data)

test('A: the addresses of the healthy instances, once each, authoritative, with the TTL', (t) => {
  const r = ask('web.service.shoal', 'A')
  t.is(r.rcode, 'NOERROR')
  t.is(r.id, 7)
  t.true(r.flag_aa)
  t.true(r.flag_rd)
  t.false(r.flag_ra)
  t.deepEqual(data(r.answers), ['10.0.0.1', '10.0.0.2'])
  t.true(r.answers!.every((a) => a.name === 'web.service.shoal' && (a as { ttl: number }).ttl === 1))
  t.deepEqual(data(ask('WEB.Service.SHOAL.', 'A').answers), ['10.0.0.1', '10.0.0.2'], 'names are case-insensitive')
})

test('tags filter: TAG.NAME and _NAME._TAG', (t) => {
  t.deepEqual(data(ask('v2.web.service.shoal', 'A').answers), ['10.0.0.2'])
  t.deepEqual(data(ask('_web._v2.service.shoal', 'SRV').answers).map((d) => (d as { port: number }).port), [22000])
  const none = ask('v9.web.service.shoal', 'A')
  t.is(none.rcode, 'NOERROR')
  t.is(none.answers!.length, 0)
})

test('SRV: one record per healthy instance with its port; the targets\' addresses as additionals', (t) => {
  const r = ask('_web._tcp.service.shoal', 'SRV')
  t.is(r.rcode, 'NOERROR')
  t.deepEqual(data(r.answers), [
    { priority: 1, weight: 1, port: 21000, target: '0a000001.addr.shoal' },
    { priority: 1, weight: 1, port: 22000, target: '0a000002.addr.shoal' },
    { priority: 1, weight: 1, port: 23000, target: '0a000002.addr.shoal' },
  ])
  t.deepEqual(r.additionals!.map((a) => [a.name, a.type, (a as { data: unknown }).data]), [
    ['0a000001.addr.shoal', 'A', '10.0.0.1'], ['0a000002.addr.shoal', 'A', '10.0.0.2'],
  ])
  t.is(data(ask('web.service.shoal', 'SRV').answers).length, 3, 'SRV of the plain name too')
  // The target resolves.
  t.deepEqual(data(ask('0a000002.addr.shoal', 'A').answers), ['10.0.0.2'])
})

test('IPv6 instances answer AAAA; addr labels round-trip', (t) => {
  t.deepEqual(data(ask('v6.service.shoal', 'AAAA').answers), ['fd00::1'])
  t.is(ask('v6.service.shoal', 'A').answers!.length, 0)
  t.is(addrLabel('fd00::1'), 'fd000000000000000000000000000001')
  t.deepEqual(data(ask(`${addrLabel('fd00::1')}.addr.shoal`, 'AAAA').answers), ['fd00::1'])
  t.is(addrLabel('127.0.3.1'), '7f000301')
})

test('unknown services and names are NXDOMAIN with the SOA; a known service without healthy instances is empty', (t) => {
  for (const name of ['nope.service.shoal', 'a.b.web.service.shoal', 'x.shoal', 'zz.addr.shoal']) {
    const r = ask(name, 'A')
    t.is(r.rcode, 'NXDOMAIN', name)
    t.is(r.authorities![0]!.type, 'SOA')
    t.is((r.authorities![0] as { data: { serial: number } }).data.serial, 42)
  }
  const idle = ask('idle.service.shoal', 'A')
  t.is(idle.rcode, 'NOERROR')
  t.is(idle.answers!.length, 0)
  t.is(ask('web.service.shoal', 'TXT').answers!.length, 0)
  t.is(ask('shoal', 'SOA').answers![0]!.type, 'SOA')
})

test('names outside the domain: REFUSED, or forwarded when a recursor is set; the domain is configurable', (t) => {
  t.is(ask('example.com', 'A').rcode, 'REFUSED')
  t.is(ask('shoal.example.com', 'A').rcode, 'REFUSED')
  t.deepEqual(answerQuery(query('example.com', 'A'), catalog, { ...opts, recursion: true }), { kind: 'forward' })
  t.true(ask('web.service.shoal', 'A', { recursion: true }).flag_ra)
  t.deepEqual(data(ask('web.service.cluster.local', 'A', { domain: 'cluster.local' }).answers), ['10.0.0.1', '10.0.0.2'])
  t.is(ask('web.service.shoal', 'A', { domain: 'cluster.local' }).rcode, 'REFUSED')
})

test('malformed: no question, two questions or another opcode; undecodable bytes get FORMERR with their id', (t) => {
  const none = answerQuery(dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 9, questions: [] })), catalog, opts)
  t.like(none.kind === 'answer' && dnsPacket.decode(dnsPacket.encode(none.packet)), { id: 9, rcode: 'FORMERR' })
  const two = dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 9, questions: [{ name: 'a.service.shoal', type: 'A' }, { name: 'b.service.shoal', type: 'A' }] }))
  const r2 = answerQuery(two, catalog, opts)
  t.like(r2.kind === 'answer' && dnsPacket.decode(dnsPacket.encode(r2.packet)), { rcode: 'FORMERR' })
  const notify = query('web.service.shoal', 'A', { flags: 4 << 11 })
  const r3 = answerQuery(notify, catalog, opts)
  t.like(r3.kind === 'answer' && dnsPacket.decode(dnsPacket.encode(r3.packet)), { rcode: 'NOTIMP' })

  const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x61])
  const reply = dnsPacket.decode(formErrFor(garbage)!)
  t.like(reply, { id: 0x1234, type: 'response', rcode: 'FORMERR' })
  t.is(formErrFor(Buffer.from([1, 2, 3])), undefined, 'no header: nothing to answer')
  const response = Buffer.from(garbage)
  response[2] = 0x81
  t.is(formErrFor(response), undefined, 'a response is never answered')
})

test('a UDP answer over 512 bytes is cut and marked truncated; EDNS raises the limit', (t) => {
  const many = Array.from({ length: 60 }, (_, i) => inst(`x${i}`, `10.1.${i >> 8}.${i & 255}`, 20000 + i, { service: 'big' }))
  const big: DnsCatalog = { instances: (n) => (n === 'big' ? many : undefined), serial: () => 1 }
  const run = (maxSize: number, over: Packet = {}) => {
    const r = answerQuery(query('_big._tcp.service.shoal', 'SRV', over), big, { ...opts, maxSize })
    if (r.kind !== 'answer') throw new Error('forwarded')
    const bytes = dnsPacket.encode(r.packet)
    return { bytes, packet: dnsPacket.decode(bytes) }
  }
  const udp = run(512)
  t.true(udp.bytes.length <= 512)
  t.true(udp.packet.flag_tc)
  t.true(udp.packet.answers!.length > 0 && udp.packet.answers!.length < 60)
  const tcp = run(65535)
  t.false(tcp.packet.flag_tc)
  t.is(tcp.packet.answers!.length, 60)
  const edns = run(512, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as unknown as Answer] })
  t.true(edns.bytes.length > 512 && edns.bytes.length <= 1232)
  t.true(edns.packet.additionals!.some((a) => a.type === 'OPT'))
})

test('shuffle orders the answers', (t) => {
  const r = ask('web.service.shoal', 'A', { shuffle: <T>(x: T[]) => [...x].reverse() })
  t.deepEqual(data(r.answers), ['10.0.0.2', '10.0.0.1'])
})
