// The mesh's kernel data path as iptables-restore text: pure, so the rules
// are tested without root. Connections to <bind>:<publish port>/tcp are
// DNATed to one of the service's healthy instances (their host address and
// port) in the nat table, as kube-proxy's iptables mode does; the user-space
// listener stays bound on the port and answers whatever no rule takes.
//
// Every agent owns a set of chains named from a hash of its node id, so
// several agents on one host (and Docker's own chains) are never touched:
//   nat PREROUTING, OUTPUT  -j SHOAL-M-<h>        (dispatch: one rule per published port, stable: its counter counts connections)
//   SHOAL-M-<h>-P<port>                            (DNAT to the instances; empty when none is healthy: the listener answers)
//   nat POSTROUTING         -j SHOAL-M-<h>-POST    (MASQUERADE what leaves the host for another node's instance)
//   filter FORWARD          -j SHOAL-M-<h>-FWD     (accept it, past Docker's FORWARD policy DROP)
import { createHash } from 'node:crypto'
import net from 'node:net'

/** One instance as the kernel dials it: an IPv4 host address and port. */
export interface NatBackend {
  readonly address: string
  readonly port: number
}

/** One published port in the kernel: its dispatch rule, and DNAT rules to `backends` (none: fall through to the listener). */
export interface NatPort {
  readonly port: number
  readonly service: string
  readonly backends: readonly NatBackend[]
}

export type NatState = ReadonlyMap<number, NatPort>

export interface NatChains {
  /** `SHOAL-M-<8 hex>`: the dispatch chain, and the prefix of the others. */
  readonly prefix: string
  readonly post: string
  readonly forward: string
  /** The comment on the jump rules: who owns them (the pid lets another agent clean up after a dead one). */
  readonly comment: string
}

/** `--mesh-datapath`: kernel NAT rules when possible (auto), always (kernel: or the agent does not start), never. */
export type DatapathChoice = 'auto' | 'kernel' | 'userspace'
export const DATAPATH_CHOICES: readonly DatapathChoice[] = ['auto', 'kernel', 'userspace']

export const CHAIN_PREFIX = 'SHOAL-M-'
const COMMENT_TAG = 'shoal-mesh'

/** The chains of the agent with node id `owner` (run by process `pid`). */
export function natChains(owner: string, pid: number): NatChains {
  const prefix = CHAIN_PREFIX + createHash('sha256').update(owner).digest('hex').slice(0, 8).toUpperCase()
  return { prefix, post: `${prefix}-POST`, forward: `${prefix}-FWD`, comment: `${COMMENT_TAG} node=${owner} pid=${pid}` }
}

export function portChain(chains: NatChains, port: number): string {
  return `${chains.prefix}-P${port}`
}

/** Why the kernel cannot serve this bind address (iptables is IPv4), or null. */
export function unfitBind(bind: string): string | null {
  return net.isIPv4(bind) ? null : `--bind ${bind} is not an IPv4 address (the kernel data path is IPv4 iptables)`
}

/** Matches packets to this agent's address: the bind address, or any local one for 0.0.0.0. */
function toBind(bind: string): string {
  return bind === '0.0.0.0' ? '-m addrtype --dst-type LOCAL' : `-d ${bind}/32`
}

function origDst(bind: string, port: number): string {
  return `-p tcp -m conntrack --ctstate DNAT${bind === '0.0.0.0' ? '' : ` --ctorigdst ${bind}/32`} --ctorigdstport ${port}`
}

const quote = (s: string) => `"${s.replace(/["\\]/g, '')}"`

/** Creates the agent's chains (empty) and the jumps into them; run once, after `natCleanup`. */
export function natSetup(chains: NatChains, bind: string): string {
  const c = `-m comment --comment ${quote(chains.comment)}`
  return [
    '*nat',
    `:${chains.prefix} - [0:0]`,
    `:${chains.post} - [0:0]`,
    `-A PREROUTING ${toBind(bind)} -p tcp ${c} -j ${chains.prefix}`,
    `-A OUTPUT ${toBind(bind)} -p tcp ${c} -j ${chains.prefix}`,
    `-A POSTROUTING ${c} -j ${chains.post}`,
    'COMMIT',
    '*filter',
    `:${chains.forward} - [0:0]`,
    `-A FORWARD ${c} -j ${chains.forward}`,
    'COMMIT',
    '',
  ].join('\n')
}

/**
 * The DNAT rules of one port: round-robin by connection with `statistic
 * --mode nth` (the first rule takes every n-th new connection, the next every
 * (n-1)-th of the rest, …, the last the remainder). The nat table sees only
 * the first packet of a connection, so established ones keep their instance
 * (conntrack) when the rules change.
 */
function dnatRules(chain: string, backends: readonly NatBackend[]): string[] {
  const n = backends.length
  return backends.map((b, i) => {
    const pick = i < n - 1 ? ` -m statistic --mode nth --every ${n - i} --packet 0` : ''
    return `-A ${chain} -p tcp${pick} -j DNAT --to-destination ${b.address}:${b.port}`
  })
}

function dispatchRule(chains: NatChains, port: number): string {
  return `${chains.prefix} -p tcp -m tcp --dport ${port} -j ${portChain(chains, port)}`
}

function sameBackends(a: readonly NatBackend[], b: readonly NatBackend[]): boolean {
  return a.length === b.length && a.every((x, i) => x.address === b[i]!.address && x.port === b[i]!.port)
}

/**
 * The one iptables-restore --noflush transaction that takes the kernel from
 * `prev` to `next`, or null when they are the same. Port chains whose
 * instances changed are rewritten (declaring a chain flushes it); dispatch
 * rules are only added or deleted, never rewritten, so their counters (the
 * connections each port took) survive instance changes.
 */
export function natUpdate(chains: NatChains, bind: string, prev: NatState, next: NatState): string | null {
  const declare: string[] = []
  const rules: string[] = []
  const removed: number[] = []
  for (const [port, p] of next) {
    const had = prev.get(port)
    if (had && sameBackends(had.backends, p.backends)) continue
    const chain = portChain(chains, port)
    declare.push(`:${chain} - [0:0]`)
    rules.push(...dnatRules(chain, p.backends))
    if (!had) rules.push(`-A ${dispatchRule(chains, port)}`)
  }
  for (const port of prev.keys()) if (!next.has(port)) removed.push(port)
  const portsChanged = removed.length > 0 || [...next.keys()].some((p) => !prev.has(p))
  if (declare.length === 0 && !portsChanged) return null
  const nat = ['*nat', ...declare]
  for (const port of removed) nat.push(`:${portChain(chains, port)} - [0:0]`)
  if (portsChanged) nat.push(`:${chains.post} - [0:0]`)
  for (const port of removed) nat.push(`-D ${dispatchRule(chains, port)}`)
  nat.push(...rules)
  for (const port of removed) nat.push(`-X ${portChain(chains, port)}`)
  const ports = [...next.keys()].sort((a, b) => a - b)
  if (portsChanged) for (const port of ports) nat.push(`-A ${chains.post} ${origDst(bind, port)} ! -o lo -j MASQUERADE`)
  nat.push('COMMIT')
  if (!portsChanged) return [...nat, ''].join('\n')
  const filter = ['*filter', `:${chains.forward} - [0:0]`, ...ports.map((port) => `-A ${chains.forward} ${origDst(bind, port)} -j ACCEPT`), 'COMMIT']
  return [...nat, ...filter, ''].join('\n')
}

/** A table's rules as `iptables-save` prints them. */
export interface SavedTables {
  nat: string
  filter: string
}

const owns = (prefix: string, chain: string) => chain === prefix || chain.startsWith(`${prefix}-`)

/**
 * The mesh chain sets to remove: this agent's own (left by a previous run,
 * even a kill -9), and those whose jump rules name a process that is gone
 * (an agent that died and whose data dir is not coming back).
 */
export function stalePrefixes(saved: SavedTables, own: string, alive: (pid: number) => boolean): Set<string> {
  const out = new Set([own])
  for (const line of `${saved.nat}\n${saved.filter}`.split('\n')) {
    const target = /-j (SHOAL-M-[0-9A-F]{8})(?:-\S+)?$/.exec(line)?.[1]
    const pid = new RegExp(`--comment "?${COMMENT_TAG} node=\\S+ pid=(\\d+)"?`).exec(line)?.[1]
    if (target && pid && !alive(Number(pid))) out.add(target)
  }
  return out
}

/**
 * Removes every chain of the given sets and the rules that jump into them, in
 * one transaction per table, from what `iptables-save` shows; null when
 * there is nothing to remove. Rules are deleted as printed (which iptables
 * accepts back), chains flushed by declaring them, then deleted.
 */
export function natCleanup(saved: SavedTables, prefixes: ReadonlySet<string>): string | null {
  const mine = (chain: string) => [...prefixes].some((p) => owns(p, chain))
  const out: string[] = []
  for (const table of ['nat', 'filter'] as const) {
    const chains: string[] = []
    const jumps: string[] = []
    for (const line of saved[table].split('\n')) {
      const decl = /^:(\S+) /.exec(line)
      if (decl && mine(decl[1]!)) chains.push(decl[1]!)
      const rule = /^(?:\[\d+:\d+\] )?-A (\S+) (.*-j (\S+).*)$/.exec(line)
      if (rule && !mine(rule[1]!) && mine(rule[3]!)) jumps.push(`-D ${rule[1]} ${rule[2]}`)
    }
    if (chains.length === 0 && jumps.length === 0) continue
    out.push(`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...jumps, ...chains.map((c) => `-X ${c}`), 'COMMIT')
  }
  return out.length === 0 ? null : [...out, ''].join('\n')
}

/** Connections each port's dispatch rule took, from `iptables -S <dispatch chain> -v`. */
export function dispatchCounters(chains: NatChains, listing: string): Map<number, number> {
  const out = new Map<number, number>()
  const re = new RegExp(`^-A ${chains.prefix} .*-c (\\d+) \\d+ -j ${chains.prefix}-P(\\d+)\\s*$`)
  for (const line of listing.split('\n')) {
    const m = re.exec(line)
    if (m) out.set(Number(m[2]), Number(m[1]))
  }
  return out
}
