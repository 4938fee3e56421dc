// PROXY protocol headers (HAProxy's spec, v1 text and v2 binary) that tell a
// backend the real client address of a proxied TCP connection.
import { isIPv4, isIPv6 } from 'node:net'

export type ProxyProtocolVersion = 'v1' | 'v2'
export const PROXY_PROTOCOL_VERSIONS: readonly ProxyProtocolVersion[] = ['v1', 'v2']

/** Both ends of the client's connection as the proxy saw them (source = client, destination = the mesh port). */
export interface ConnectionAddresses {
  sourceAddress: string
  sourcePort: number
  destinationAddress: string
  destinationPort: number
}

export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/** "::ffff:1.2.3.4" (an IPv4 client on a dual-stack socket) is the IPv4 address it wraps. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

function family(a: ConnectionAddresses): { src: string; dst: string; v: 4 | 6 } | null {
  const src = unmapped(a.sourceAddress)
  const dst = unmapped(a.destinationAddress)
  if (isIPv4(src) && isIPv4(dst)) return { src, dst, v: 4 }
  if (isIPv6(src) && isIPv6(dst)) return { src, dst, v: 6 }
  if (isIPv6(src) && isIPv4(dst)) return { src, dst: `::ffff:${dst}`, v: 6 }
  if (isIPv4(src) && isIPv6(dst)) return { src: `::ffff:${src}`, dst, v: 6 }
  return null
}

/** `PROXY TCP4 src dst sport dport\r\n`; `PROXY UNKNOWN\r\n` when the addresses are not known. */
export function proxyV1Header(a: ConnectionAddresses | null): Buffer {
  const f = a && family(a)
  if (!a || !f) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  return Buffer.from(`PROXY TCP${f.v} ${f.src} ${f.dst} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1')
}

/** The binary v2 header: PROXY command over TCP4/TCP6; LOCAL with no addresses when they are not known. */
export function proxyV2Header(a: ConnectionAddresses | null): Buffer {
  const f = a && family(a)
  if (!a || !f) {
    const local = Buffer.alloc(16)
    PROXY_V2_SIGNATURE.copy(local)
    local[12] = 0x20 // version 2, LOCAL
    local[13] = 0x00 // UNSPEC
    return local
  }
  const addrLen = f.v === 4 ? 12 : 36
  const buf = Buffer.alloc(16 + addrLen)
  PROXY_V2_SIGNATURE.copy(buf)
  buf[12] = 0x21 // version 2, PROXY
  buf[13] = f.v === 4 ? 0x11 : 0x21 // TCP over IPv4 / IPv6
  buf.writeUInt16BE(addrLen, 14)
  const ipLen = f.v === 4 ? 4 : 16
  ipBytes(f.src, f.v).copy(buf, 16)
  ipBytes(f.dst, f.v).copy(buf, 16 + ipLen)
  buf.writeUInt16BE(a.sourcePort, 16 + 2 * ipLen)
  buf.writeUInt16BE(a.destinationPort, 18 + 2 * ipLen)
  return buf
}

export function proxyHeader(version: ProxyProtocolVersion, a: ConnectionAddresses | null): Buffer {
  return version === 'v1' ? proxyV1Header(a) : proxyV2Header(a)
}

function ipBytes(address: string, v: 4 | 6): Buffer {
  if (v === 4) return Buffer.from(address.split('.').map(Number))
  // Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
  let text = address
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2))
  return out
}
