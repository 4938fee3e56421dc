// The DNS answer builder: a pure function from a decoded query and the service
// catalog to a response (or "forward this to the recursor"). Names served:
//   NAME.service.<domain>          A/AAAA of the healthy instances (SRV too)
//   TAG.NAME.service.<domain>      the same, only instances with the tag
//   _NAME._tcp.service.<domain>    SRV (RFC 2782) with ports, A/AAAA of the targets as additionals
//   _NAME._TAG.service.<domain>    SRV of the instances with the tag
//   HEX.addr.<domain>              the address an SRV target names (hex of the IPv4/IPv6 bytes)
// Anything else in the domain is NXDOMAIN; names outside it are forwarded or refused.
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet'
import { isIPv4, isIPv6 } from 'node:net'
import type { ServiceInstance } from '../structs/index.ts'

export const DEFAULT_DNS_DOMAIN = 'shoal'
export const DEFAULT_DNS_TTL = 1
/** The payload a UDP answer fits in without EDNS (RFC 1035). */
export const MAX_UDP_PAYLOAD = 512
/** What we advertise and accept with EDNS: safe from IP fragmentation (DNS flag day 2020). */
export const EDNS_PAYLOAD = 1232

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const
export type Rcode = keyof typeof RCODE

/** What the builder reads of the catalog. */
export interface DnsCatalog {
  /** Instances of the service (healthy or not); undefined when no job declares it and none exists. */
  instances(name: string): readonly ServiceInstance[] | undefined
  /** A serial for the SOA record (the catalog index). */
  serial(): number
}

export interface AnswerOptions {
  domain: string
  ttl: number
  /** A recursor is configured: names outside the domain are forwarded instead of refused. */
  recursion: boolean
  /** The transport's size limit: 512 (UDP without EDNS), the EDNS size, or 65535 (TCP). */
  maxSize?: number
  /** Order of equal answers (load spreading); default: catalog order. */
  shuffle?: <T>(items: T[]) => T[]
}

export type DnsResult = { kind: 'answer'; packet: Packet } | { kind: 'forward' }

/** The address label an SRV target carries: hex of the address bytes, as Consul's `.addr.` names. */
export function addrLabel(ip: string): string | undefined {
  if (isIPv4(ip)) return ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')
  if (isIPv6(ip)) return Buffer.from(ipv6Bytes(ip)).toString('hex')
  return undefined
}

function ipv6Bytes(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined]
  const parse = (s: string) => (s === '' ? [] : s.split(':')).flatMap((g) => {
    if (isIPv4(g)) return g.split('.').map(Number)
    const n = parseInt(g, 16)
    return [n >> 8, n & 0xff]
  })
  const h = parse(head)
  const t = tail === undefined ? [] : parse(tail)
  return [...h, ...new Array<number>(16 - h.length - t.length).fill(0), ...t]
}

function addrFromLabel(label: string): string | undefined {
  if (/^[0-9a-f]{8}$/.test(label)) return [0, 2, 4, 6].map((i) => parseInt(label.slice(i, i + 2), 16)).join('.')
  if (/^[0-9a-f]{32}$/.test(label)) return [...Array(8).keys()].map((i) => parseInt(label.slice(i * 4, i * 4 + 4), 16).toString(16)).join(':')
  return undefined
}

/** A response header for `query` with the given code and no records: what FORMERR and REFUSED look like. */
export function errorResponse(query: { id?: number; flags?: number; questions?: Question[] }, rcode: Rcode): Packet {
  return {
    type: 'response', id: query.id ?? 0,
    flags: ((query.flags ?? 0) & (0xf << 11 | dnsPacket.RECURSION_DESIRED)) | RCODE[rcode],
    questions: query.questions ?? [], answers: [], authorities: [], additionals: [],
  }
}

/** FORMERR for bytes that do not decode: the header's id and opcode when there are 12 bytes of it, else nothing. */
export function formErrFor(bytes: Buffer): Buffer | undefined {
  if (bytes.length < 12) return undefined
  if (bytes[2]! & 0x80) return undefined // a response: never answer one (no loops)
  return dnsPacket.encode(errorResponse({ id: bytes.readUInt16BE(0), flags: bytes.readUInt16BE(2) }, 'FORMERR'))
}

interface Parsed {
  kind: 'service'
  service: string
  tag: string | undefined
}

/** The service (and tag) a name in the domain asks for, an address name, or undefined (no such name). */
function parseName(labels: readonly string[]): Parsed | { kind: 'addr'; ip: string } | { kind: 'apex' } | undefined {
  if (labels.length === 0 || (labels.length === 1 && (labels[0] === 'service' || labels[0] === 'addr'))) return { kind: 'apex' }
  const last = labels.at(-1)
  if (last === 'addr' && labels.length === 2) {
    const ip = addrFromLabel(labels[0]!)
    return ip === undefined ? undefined : { kind: 'addr', ip }
  }
  if (last !== 'service') return undefined
  const rest = labels.slice(0, -1)
  if (rest.length === 1) return { kind: 'service', service: rest[0]!, tag: undefined }
  if (rest.length === 2 && rest[0]!.startsWith('_') && rest[1]!.startsWith('_')) {
    const proto = rest[1]!.slice(1)
    return { kind: 'service', service: rest[0]!.slice(1), tag: proto === 'tcp' || proto === 'udp' ? undefined : proto }
  }
  if (rest.length === 2) return { kind: 'service', service: rest[1]!, tag: rest[0] }
  return undefined
}

export function answerQuery(query: DecodedPacket, catalog: DnsCatalog, o: AnswerOptions): DnsResult {
  const questions = query.questions ?? []
  const edns = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined
  const respond = (rcode: Rcode, answers: Answer[] = [], additionals: Answer[] = [], authorities: Answer[] = []): DnsResult => {
    const base = errorResponse(query, rcode)
    const packet: Packet = { ...base, flags: base.flags! | dnsPacket.AUTHORITATIVE_ANSWER | (o.recursion ? dnsPacket.RECURSION_AVAILABLE : 0), answers, additionals, authorities }
    if (edns) packet.additionals = [...additionals, { type: 'OPT', name: '.', udpPayloadSize: EDNS_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as unknown as Answer]
    return { kind: 'answer', packet: fit(packet, o.maxSize ?? 65535, edns?.udpPayloadSize) }
  }
  if (((query.flags ?? 0) >> 11 & 0xf) !== 0) return { kind: 'answer', packet: errorResponse(query, 'NOTIMP') }
  if (questions.length !== 1) return { kind: 'answer', packet: errorResponse(query, 'FORMERR') }
  const q = questions[0]!
  const qtype: string = q.type // dns-packet decodes 255 as "ANY", which its types leave out
  const name = q.name.toLowerCase().replace(/\.$/, '')
  const domain = o.domain.toLowerCase()
  if (name !== domain && !name.endsWith(`.${domain}`)) {
    return o.recursion ? { kind: 'forward' } : { kind: 'answer', packet: errorResponse(query, 'REFUSED') }
  }
  const soa: Answer = {
    type: 'SOA', name: domain, ttl: o.ttl, class: 'IN',
    data: { mname: `ns.${domain}`, rname: `hostmaster.${domain}`, serial: catalog.serial() >>> 0, refresh: 3600, retry: 600, expire: 86400, minimum: o.ttl },
  }
  const labels = name === domain ? [] : name.slice(0, -domain.length - 1).split('.')
  const parsed = parseName(labels)
  if (parsed === undefined) return respond('NXDOMAIN', [], [], [soa])
  if (parsed.kind === 'apex') return respond('NOERROR', q.type === 'SOA' ? [soa] : [], [], q.type === 'SOA' ? [] : [soa])
  if (parsed.kind === 'addr') {
    const type = isIPv4(parsed.ip) ? 'A' : 'AAAA'
    if (qtype !== type && qtype !== 'ANY') return respond('NOERROR', [], [], [soa])
    return respond('NOERROR', [{ type, name: q.name, ttl: o.ttl, class: 'IN', data: parsed.ip }])
  }
  const all = catalog.instances(parsed.service)
  if (all === undefined) return respond('NXDOMAIN', [], [], [soa])
  const shuffle = o.shuffle ?? (<T>(x: T[]) => x)
  const healthy = shuffle(all.filter((i) => i.healthy && (parsed.tag === undefined || i.tags.includes(parsed.tag))))
  const addressRecord = (nameOf: string, ip: string): Answer | undefined => {
    if (isIPv4(ip)) return { type: 'A', name: nameOf, ttl: o.ttl, class: 'IN', data: ip }
    if (isIPv6(ip)) return { type: 'AAAA', name: nameOf, ttl: o.ttl, class: 'IN', data: ip }
    return undefined
  }
  if (qtype === 'A' || qtype === 'AAAA' || qtype === 'ANY') {
    const want = qtype === 'ANY' ? undefined : qtype
    const seen = new Set<string>()
    const answers: Answer[] = []
    for (const i of healthy) {
      const r = addressRecord(q.name, i.address)
      if (!r || (want !== undefined && r.type !== want) || seen.has(i.address)) continue
      seen.add(i.address)
      answers.push(r)
    }
    return respond('NOERROR', answers, [], answers.length ? [] : [soa])
  }
  if (q.type === 'SRV') {
    const answers: Answer[] = []
    const additionals: Answer[] = []
    const targets = new Set<string>()
    for (const i of healthy) {
      const label = addrLabel(i.address)
      if (label === undefined) continue
      const target = `${label}.addr.${domain}`
      answers.push({ type: 'SRV', name: q.name, ttl: o.ttl, class: 'IN', data: { priority: 1, weight: 1, port: i.port, target } })
      if (targets.has(target)) continue
      targets.add(target)
      const r = addressRecord(target, i.address)
      if (r) additionals.push(r)
    }
    return respond('NOERROR', answers, additionals, answers.length ? [] : [soa])
  }
  return respond('NOERROR', [], [], [soa])
}

/**
 * Keeps the response within the transport's size: additionals go first, then
 * answers, and a response that lost answers says so (TC) so the client retries over TCP.
 */
function fit(packet: Packet, transportMax: number, ednsSize: number | undefined): Packet {
  const limit = transportMax <= MAX_UDP_PAYLOAD && ednsSize !== undefined ? Math.min(Math.max(ednsSize, MAX_UDP_PAYLOAD), EDNS_PAYLOAD) : transportMax
  if (dnsPacket.encodingLength(packet) <= limit) return packet
  const opt = (packet.additionals ?? []).filter((a) => a.type === 'OPT')
  const p: Packet = { ...packet, additionals: [...opt] }
  if (dnsPacket.encodingLength(p) <= limit) return p
  const answers = [...(packet.answers ?? [])]
  while (answers.length > 0 && dnsPacket.encodingLength({ ...p, answers }) > limit) answers.pop()
  return { ...p, answers, authorities: [], flags: (p.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE }
}
