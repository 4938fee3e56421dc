// The kernel data path's rules as iptables-restore text: built without root,
// checked line by line (the integration test runs them for real).
import test from 'ava'
import { dispatchCounters, natChains, natCleanup, natSetup, natUpdate, portChain, stalePrefixes, unfitBind, type NatPort } from '../../src/mesh/nat-rules.ts'

const chains = natChains('12D3KooWNodeA', 4242)
const H = chains.prefix
const BIND = '127.0.12.1'
const web = (...ports: number[]): NatPort => ({ port: 8080, service: 'web', backends: ports.map((p, i) => ({ address: `127.0.12.${2 + i}`, port: p })) })
const state = (...ps: NatPort[]) => new Map(ps.map((p) => [p.port, p]))

test('chain names: a hash of the node id, short enough for iptables (28 chars), distinct per agent', (t) => {
  t.regex(H, /^SHOAL-M-[0-9A-F]{8}$/)
  t.is(natChains('12D3KooWNodeA', 1).prefix, H, 'the pid does not change the name: a restart finds its chains')
  t.not(natChains('12D3KooWNodeB', 4242).prefix, H)
  t.true(portChain(chains, 65535).length <= 28)
  t.is(chains.comment, 'shoal-mesh node=12D3KooWNodeA pid=4242')
})

test('setup: own chains, jumps from PREROUTING and OUTPUT for the bind address, POSTROUTING and FORWARD', (t) => {
  t.is(natSetup(chains, BIND), [
    '*nat',
    `:${H} - [0:0]`,
    `:${H}-POST - [0:0]`,
    `-A PREROUTING -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}`,
    `-A OUTPUT -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}`,
    `-A POSTROUTING -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-POST`,
    'COMMIT',
    '*filter',
    `:${H}-FWD - [0:0]`,
    `-A FORWARD -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-FWD`,
    'COMMIT',
    '',
  ].join('\n'))
  t.regex(natSetup(chains, '0.0.0.0'), /-A OUTPUT -m addrtype --dst-type LOCAL -p tcp /, '0.0.0.0: any local address')
})

test('unfitBind: IPv4 only', (t) => {
  t.is(unfitBind('127.0.12.1'), null)
  t.is(unfitBind('0.0.0.0'), null)
  t.regex(unfitBind('::1')!, /not an IPv4 address/)
  t.regex(unfitBind('localhost')!, /not an IPv4 address/)
})

test('a new port: its DNAT chain round-robin by nth (1/3, 1/2, the rest), a dispatch rule, MASQUERADE and FORWARD for DNATed connections', (t) => {
  t.is(natUpdate(chains, BIND, new Map(), state(web(20001, 20002, 20003))), [
    '*nat',
    `:${H}-P8080 - [0:0]`,
    `:${H}-POST - [0:0]`,
    `-A ${H}-P8080 -p tcp -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 127.0.12.2:20001`,
    `-A ${H}-P8080 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 127.0.12.3:20002`,
    `-A ${H}-P8080 -p tcp -j DNAT --to-destination 127.0.12.4:20003`,
    `-A ${H} -p tcp -m tcp --dport 8080 -j ${H}-P8080`,
    `-A ${H}-POST -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.12.1/32 --ctorigdstport 8080 ! -o lo -j MASQUERADE`,
    'COMMIT',
    '*filter',
    `:${H}-FWD - [0:0]`,
    `-A ${H}-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.12.1/32 --ctorigdstport 8080 -j ACCEPT`,
    'COMMIT',
    '',
  ].join('\n'))
})

test('instances change: only the port chain is rewritten (the dispatch rule and its counter stay)', (t) => {
  const text = natUpdate(chains, BIND, state(web(20001, 20002, 20003)), state(web(20001, 20003)))!
  t.is(text, [
    '*nat',
    `:${H}-P8080 - [0:0]`,
    `-A ${H}-P8080 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 127.0.12.2:20001`,
    `-A ${H}-P8080 -p tcp -j DNAT --to-destination 127.0.12.3:20003`,
    'COMMIT',
    '',
  ].join('\n'))
  t.false(text.includes('*filter'))
})

test('no healthy instance: the port chain is empty, so connections fall through to the user-space listener', (t) => {
  const text = natUpdate(chains, BIND, state(web(20001)), state(web()))!
  t.is(text, ['*nat', `:${H}-P8080 - [0:0]`, 'COMMIT', ''].join('\n'))
  t.false(text.includes('DNAT --to'))
})

test('the same state twice: nothing to do', (t) => {
  t.is(natUpdate(chains, BIND, state(web(20001, 20002)), state(web(20001, 20002))), null)
  t.is(natUpdate(chains, BIND, new Map(), new Map()), null)
})

test('a port removed: its dispatch rule deleted, its chain flushed and deleted, POST and FWD rewritten for the others', (t) => {
  const api: NatPort = { port: 9090, service: 'api', backends: [{ address: '127.0.12.9', port: 21000 }] }
  t.is(natUpdate(chains, BIND, state(web(20001), api), state(api)), [
    '*nat',
    `:${H}-P8080 - [0:0]`,
    `:${H}-POST - [0:0]`,
    `-D ${H} -p tcp -m tcp --dport 8080 -j ${H}-P8080`,
    `-X ${H}-P8080`,
    `-A ${H}-POST -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.12.1/32 --ctorigdstport 9090 ! -o lo -j MASQUERADE`,
    'COMMIT',
    '*filter',
    `:${H}-FWD - [0:0]`,
    `-A ${H}-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.12.1/32 --ctorigdstport 9090 -j ACCEPT`,
    'COMMIT',
    '',
  ].join('\n'))
})

// What iptables-save printed on this host (nf_tables backend) with Docker's chains and two agents' chains.
const other = natChains('12D3KooWNodeB', 999999)
const O = other.prefix
const savedNat = `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:${H} - [0:0]
:${H}-P8080 - [0:0]
:${H}-POST - [0:0]
:${O} - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}
-A PREROUTING -d 127.0.12.7/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeB pid=999999" -j ${O}
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-POST
-A DOCKER -i docker0 -j RETURN
-A ${H} -p tcp -m tcp --dport 8080 -j ${H}-P8080
-A ${H}-P8080 -p tcp -j DNAT --to-destination 127.0.12.2:20001
COMMIT
`
const savedFilter = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:${H}-FWD - [0:0]
-A INPUT -s 127.0.5.2/32 -j DROP
-A FORWARD -j DOCKER-USER
-A FORWARD -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-FWD
COMMIT
`

test('cleanup: removes exactly the given chain sets and the jumps into them; Docker\'s and others\' rules stay', (t) => {
  t.is(natCleanup({ nat: savedNat, filter: savedFilter }, new Set([H])), [
    '*nat',
    `:${H} - [0:0]`,
    `:${H}-P8080 - [0:0]`,
    `:${H}-POST - [0:0]`,
    `-D PREROUTING -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}`,
    `-D OUTPUT -d 127.0.12.1/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}`,
    `-D POSTROUTING -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-POST`,
    `-X ${H}`,
    `-X ${H}-P8080`,
    `-X ${H}-POST`,
    'COMMIT',
    '*filter',
    `:${H}-FWD - [0:0]`,
    `-D FORWARD -m comment --comment "shoal-mesh node=12D3KooWNodeA pid=4242" -j ${H}-FWD`,
    `-X ${H}-FWD`,
    'COMMIT',
    '',
  ].join('\n'))
  t.is(natCleanup({ nat: savedNat, filter: savedFilter }, new Set(['SHOAL-M-00000000'])), null)
})

test('stale chain sets: always our own; another agent\'s only when its process is gone', (t) => {
  const saved = { nat: savedNat, filter: savedFilter }
  t.deepEqual([...stalePrefixes(saved, H, () => true)], [H])
  t.deepEqual([...stalePrefixes(saved, H, (pid) => pid !== 999999)].sort(), [H, O].sort())
  const both = natCleanup(saved, stalePrefixes(saved, H, () => false))!
  t.true(both.includes(`-D PREROUTING -d 127.0.12.7/32 -p tcp -m comment --comment "shoal-mesh node=12D3KooWNodeB pid=999999" -j ${O}`))
  t.true(both.includes(`-X ${O}\n`))
})

test('dispatch counters: connections per port from iptables -S -v', (t) => {
  const listing = [`-N ${H}`, `-A ${H} -p tcp -m tcp --dport 8080 -c 120 7200 -j ${H}-P8080`, `-A ${H} -p tcp -m tcp --dport 9090 -c 0 0 -j ${H}-P9090`].join('\n')
  t.deepEqual([...dispatchCounters(chains, listing)], [[8080, 120], [9090, 0]])
})
