// The SWIM core (src/gossip/swim.ts) on a simulated network (test/fixtures/swim-sim.ts).
// One tick = 100 ms with the default Membership settings, so 10 ticks = 1 s.
// A failing randomized run names its seed; replay one with
//   SWIM_SEED=123 node_modules/.bin/ava test/unit/swim.test.ts --match '...'
import test from 'ava'
import { Swim, overrides, parseSwimMessage, type MemberStatus, type SwimMessage, type SwimUpdate } from '../../src/gossip/swim.ts'
import { SwimSim, seeds } from '../fixtures/swim-sim.ts'

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)] as number
}

function allAlive(sim: SwimSim): boolean {
  const up = sim.running()
  return up.every((o) => up.every((x) => o === x || sim.view(o, x)?.status === 'alive'))
}

test('steady state: no suspicion without faults, every message survives msgpack', (t) => {
  const sim = new SwimSim({ seed: 7, nodes: 5, clone: true })
  sim.run(3000)
  t.deepEqual(sim.observed.filter((o) => o.event.status !== 'alive').map((o) => o.event), [])
  t.true(allAlive(sim))
  for (const id of sim.ids) {
    const st = sim.core(id).stats()
    t.is(st.probeFailures, 0)
    t.is(st.malformed, 0)
    t.is(sim.core(id).localHealth, 0)
    t.is(sim.core(id).incarnation, 1)
    // about one probe per period
    t.true(st.probes >= 3000 / 5 - 1 && st.probes <= 3000 / 5 + 1, `${id}: ${st.probes} probes`)
  }
  t.log(`${sim.delivered} messages in 3000 ticks for 5 nodes (${(sim.delivered / 3000 / 5).toFixed(2)} per node per tick)`)
})

test('join through one seed: push-pull sync spreads the member list and the addresses', (t) => {
  const sim = new SwimSim({ seed: 3, nodes: 8, join: 'seed' })
  const at = sim.runUntil(() => sim.ids.every((o) => sim.core(o).members().length === 8), 200)
  t.true(at >= 0 && at <= 20, `everyone knew everyone at tick ${at}`)
  const m = sim.core('n7').member('n3')
  t.is(m?.status, 'alive')
  t.is(m?.incarnation, 1)
  t.deepEqual(m?.addrs, ['/sim/n3/1'])
  sim.run(500)
  t.true(allAlive(sim))
})

function detection(hint: boolean, count: number, base: number): { perObserver: number[]; allSee: number[] } {
  const perObserver: number[] = []
  const allSee: number[] = []
  for (const seed of seeds(count, base)) {
    const sim = new SwimSim({ seed, nodes: 5 })
    sim.run(40 + (seed % 13))
    const t0 = sim.now
    sim.crash('n4', { hint })
    const t1 = sim.runUntil(() => sim.allSee('n4', 'dead'), 500)
    if (t1 < 0) throw new Error(`seed ${seed}: n4 not detected`)
    allSee.push(t1 - t0)
    for (const o of ['n0', 'n1', 'n2', 'n3']) perObserver.push((sim.firstEvent(o, 'n4', 'dead', t0) as number) - t0)
    if (sim.eventsAbout('n4', 'dead').length !== 4) throw new Error(`seed ${seed}: dead reported more than once per observer`)
    const wrong = sim.observed.filter((o) => o.event.id !== 'n4' && o.event.status === 'dead')
    if (wrong.length > 0) throw new Error(`seed ${seed}: live node declared dead: ${JSON.stringify(wrong[0])}`)
  }
  return { perObserver, allSee }
}

test('a silently crashed node (like SIGSTOP) is declared dead by every survivor within the bound', (t) => {
  const { perObserver, allSee } = detection(false, 200, 1)
  t.log(`ticks from crash to dead, per observer: median ${median(perObserver)}, max ${Math.max(...perObserver)}; until all agree: median ${median(allSee)}, max ${Math.max(...allSee)}`)
  // someone probes it within a few ticks, the probe fails after 5, the others
  // confirm within about two periods, and the minimum suspicion timeout is 16:
  // ~26 ticks; without any confirmation it would be the 64-tick maximum
  t.true(median(allSee) <= 30, `median ${median(allSee)}`)
  t.true(Math.max(...allSee) <= 50, `max ${Math.max(...allSee)}`)
  // a live node would have to be silent this long to be declared dead
  t.true(Math.min(...perObserver) >= 20, `min ${Math.min(...perObserver)}`)
})

test('with a connection-closed hint (kill -9) detection is one probe period plus the minimum suspicion timeout', (t) => {
  const { perObserver, allSee } = detection(true, 100, 1_000)
  t.log(`ticks from crash to dead with hints: per observer median ${median(perObserver)}, max ${Math.max(...perObserver)}`)
  // 5-tick probe + the hinted 12-tick min timeout (3 confirmations arrive at once)
  t.true(Math.max(...allSee) <= 18, `max ${Math.max(...allSee)}`)
})

test('a suspected live node refutes with a higher incarnation and is never declared dead', (t) => {
  // (1) someone claims n2 is suspect
  const sim = new SwimSim({ seed: 11, nodes: 5 })
  sim.run(20)
  sim.inject('n1', 'n0', { type: 'gossip', updates: [{ id: 'n2', status: 'suspect', incarnation: 1, from: 'n1' }] })
  t.is(sim.view('n0', 'n2')?.status, 'suspect')
  const at = sim.runUntil(() => sim.view('n0', 'n2')?.status === 'alive', 50)
  t.true(at >= 0 && at - 20 <= 5, `refuted after ${at - 20} ticks`)
  t.is(sim.core('n2').incarnation, 2)
  t.is(sim.view('n0', 'n2')?.incarnation, 2)
  t.is(sim.core('n2').stats().refutations, 1)
  sim.run(200)
  t.deepEqual(sim.eventsAbout('n2', 'dead'), [])
  t.true(allAlive(sim))

  // (2) n2's event loop stalls long enough to fail probes, not long enough to die
  let suspected = 0
  for (const seed of seeds(30, 100)) {
    const s2 = new SwimSim({ seed, nodes: 5 })
    s2.run(30)
    s2.stall('n2', 8)
    s2.run(300)
    if (s2.eventsAbout('n2', 'suspect').length > 0) {
      suspected++
      t.true(s2.core('n2').incarnation > 1, `seed ${seed}: refuted`)
    }
    t.deepEqual(s2.eventsAbout('n2', 'dead'), [], `seed ${seed}`)
    t.true(allAlive(s2), `seed ${seed}`)
  }
  t.log(`an 8-tick stall got n2 suspected in ${suspected}/30 runs, declared dead in none`)
  t.true(suspected > 15)
})

test('a frozen node (SIGSTOP) is declared dead, and after resuming refutes and is alive again', (t) => {
  for (const seed of seeds(20, 200)) {
    const sim = new SwimSim({ seed, nodes: 5 })
    sim.run(40)
    sim.freeze('n3')
    const t1 = sim.runUntil(() => sim.allSee('n3', 'dead', ['n0', 'n1', 'n2', 'n4']), 100)
    t.true(t1 > 0, `seed ${seed}: detected`)
    sim.run(30)
    sim.unfreeze('n3')
    const resumed = sim.now
    const t2 = sim.runUntil(() => allAlive(sim), 100)
    t.true(t2 >= 0 && t2 - resumed <= 10, `seed ${seed}: all alive again after ${t2 - resumed} ticks`)
    t.true(sim.core('n3').incarnation > 1)
    for (const o of ['n0', 'n1', 'n2', 'n4']) t.is(sim.view(o, 'n3')?.incarnation, sim.core('n3').incarnation)
    const wrong = sim.observed.filter((o) => o.event.id !== 'n3' && o.event.status === 'dead')
    t.deepEqual(wrong, [], `seed ${seed}`)
  }
})

test('a partitioned-then-healed node comes back alive with a higher incarnation', (t) => {
  for (const [seed, minority] of [[1, ['n2']], [2, ['n0', 'n1']], [3, ['n4']]] as Array<[number, string[]]>) {
    const sim = new SwimSim({ seed, nodes: 5 })
    sim.run(30)
    const before = new Map(sim.ids.map((id) => [id, sim.core(id).incarnation]))
    sim.partition([minority])
    sim.run(600)
    const majority = sim.ids.filter((id) => !minority.includes(id))
    for (const id of minority) t.true(sim.allSee(id, 'dead', majority), `majority sees ${id} dead`)
    // a node cut off alone missed acks without nacks: its local health went up
    if (minority.length === 1) t.true(sim.core(minority[0] as string).localHealth > 0)
    sim.heal()
    const t0 = sim.now
    const at = sim.runUntil(() => allAlive(sim), 300)
    t.true(at >= 0, `seed ${seed}: converged`)
    t.log(`partition ${minority.join('+')} | rest: healed in ${at - t0} ticks`)
    for (const id of minority) {
      t.true(sim.core(id).incarnation > (before.get(id) as number), `${id} came back with a higher incarnation`)
      for (const o of majority) t.is(sim.view(o, id)?.incarnation, sim.core(id).incarnation)
    }
    sim.run(300)
    t.true(allAlive(sim))
  }
})

test('leave: `left` spreads at once, is acknowledged, and is final for that incarnation', (t) => {
  const sim = new SwimSim({ seed: 5, nodes: 5 })
  sim.run(50)
  const others = ['n0', 'n1', 'n2', 'n4']
  sim.core('n3').leave()
  sim.tick()
  t.true(sim.allSee('n3', 'left', others))
  t.deepEqual(sim.core('n3').leaveStatus(), { sent: 4, acked: 4 })
  t.is(sim.view('n3', 'n3')?.status, 'left')
  t.true(sim.core('n3').hasLeft)
  sim.run(100)
  // news at the same incarnation cannot bring it back, nor make it dead
  for (const status of ['alive', 'suspect', 'dead'] as MemberStatus[]) {
    sim.inject('n1', 'n0', { type: 'gossip', updates: [{ id: 'n3', status, incarnation: 1 }] })
    sim.inject('n1', 'n0', { type: 'sync', reply: false, updates: [{ id: 'n3', status, incarnation: 1 }] })
  }
  t.deepEqual(sim.view('n0', 'n3'), { status: 'left', incarnation: 1 })
  // the leaver does not refute what it hears about itself
  sim.inject('n0', 'n3', { type: 'gossip', updates: [{ id: 'n3', status: 'dead', incarnation: 1 }] })
  t.is(sim.core('n3').incarnation, 1)
  sim.run(100)
  t.true(sim.allSee('n3', 'left', others))
  t.deepEqual(sim.eventsAbout('n3', 'dead'), [])
  t.deepEqual(sim.eventsAbout('n3', 'suspect'), [])
  // a restart with a higher incarnation rejoins
  sim.crash('n3')
  sim.restart('n3', 2, ['n0'])
  const at = sim.runUntil(() => sim.allSee('n3', 'alive', others), 50)
  t.true(at >= 0)
  t.is(sim.view('n4', 'n3')?.incarnation, 2)
  t.deepEqual(sim.view('n4', 'n3'), { status: 'alive', incarnation: 2 })
})

test('a node restarted with a higher incarnation is alive again everywhere, at its new addresses', (t) => {
  const sim = new SwimSim({ seed: 9, nodes: 5 })
  sim.run(30)
  sim.crash('n2', { hint: true })
  t.true(sim.runUntil(() => sim.allSee('n2', 'dead'), 100) > 0)
  sim.restart('n2', 1_000, ['n4'])
  const at = sim.runUntil(() => allAlive(sim), 50)
  t.true(at >= 0)
  for (const o of ['n0', 'n1', 'n3', 'n4']) {
    t.is(sim.view(o, 'n2')?.incarnation, 1_000)
    t.deepEqual(sim.core(o).member('n2')?.addrs, ['/sim/n2/1000'])
  }
  // and a restart that reuses an old incarnation is not believed until it overtakes
  sim.crash('n2', { hint: true })
  t.true(sim.runUntil(() => sim.allSee('n2', 'dead'), 100) > 0)
  sim.restart('n2', 1_000, ['n4'])
  sim.run(50)
  // others tell it that incarnation 1000 is dead: it refutes with 1001
  t.true(allAlive(sim))
  t.is(sim.core('n2').incarnation, 1_001)
})

test('indirect probes: a broken direct link does not make anyone suspect', (t) => {
  const sim = new SwimSim({ seed: 4, nodes: 5 })
  sim.block('n0', 'n1')
  sim.block('n1', 'n0')
  sim.run(3000)
  t.deepEqual(sim.observed.filter((o) => o.event.status !== 'alive').map((o) => `${o.observer}: ${o.event.id} ${o.event.status}`), [])
  t.true(sim.core('n0').stats().probes > 500)
})

test('no false deaths under 20% message loss (many seeds, 10 simulated minutes each)', (t) => {
  let suspicions = 0
  let refutations = 0
  for (const seed of seeds(40, 10_000)) {
    const sim = new SwimSim({ seed, nodes: 5, loss: 0.2, maxDelay: 1 })
    sim.run(6000)
    const dead = sim.observed.filter((o) => o.event.status === 'dead')
    if (dead.length > 0) {
      t.fail(`seed ${seed}: ${dead.length} false death(s), first: ${JSON.stringify(dead[0])}`)
      return
    }
    suspicions += sim.observed.filter((o) => o.event.status === 'suspect').length
    for (const id of sim.ids) refutations += sim.core(id).stats().refutations
  }
  t.log(`40 runs x 6000 ticks: ${suspicions} suspect events, ${refutations} refutations, 0 deaths`)
  t.true(refutations > 0, 'the loss did cause suspicions')
})

test('no false deaths with lossy, reordering links and random event-loop stalls', (t) => {
  for (const seed of seeds(20, 20_000)) {
    const sim = new SwimSim({ seed, nodes: 7, loss: 0.1, maxDelay: 2, stallProb: 0.01, stallMaxTicks: 4 })
    sim.run(5000)
    const dead = sim.observed.filter((o) => o.event.status === 'dead')
    t.deepEqual(dead, [], `seed ${seed}`)
  }
})

test('Lifeguard: a node that reads its input late raises its local health and gets nobody killed', (t) => {
  for (const seed of seeds(10, 300)) {
    const sim = new SwimSim({ seed, nodes: 5 })
    sim.run(20)
    // n0's timers run, but everything it receives is 6 ticks late: longer than a probe period
    sim.slowInbound('n0', 6)
    let maxHealth = 0
    for (let i = 0; i < 2000; i++) {
      sim.tick()
      maxHealth = Math.max(maxHealth, sim.core('n0').localHealth)
    }
    const st = sim.core('n0').stats()
    if (seed === 300) t.log(`n0: local health peaked at ${maxHealth}, now ${sim.core('n0').localHealth}; ${st.probeFailures}/${st.probes} probes failed; it raised ${st.suspicions} suspicions`)
    t.true(maxHealth >= 3, `seed ${seed}: local health ${maxHealth}`)
    t.deepEqual(sim.observed.filter((o) => o.event.status === 'dead'), [], `seed ${seed}`)
    for (const id of ['n1', 'n2', 'n3', 'n4']) t.true(sim.core(id).localHealth <= 1, `${id} ${sim.core(id).localHealth}`)
  }
})

test('suspicion timeout: scales with log n and shrinks with independent confirmations', (t) => {
  // no network here, so our own probes fail: keep local health out of the numbers
  const core = new Swim({ id: 'a', members: ['b', 'c', 'd', 'e'], maxLocalHealth: 0 })
  t.deepEqual(core.suspicionBounds(5), { min: 16, max: 64 })
  t.deepEqual(core.suspicionBounds(5, true), { min: 12, max: 45 })
  t.deepEqual(core.suspicionBounds(2), { min: 10, max: 40 })
  t.deepEqual(core.suspicionBounds(100), { min: 45, max: 180 })
  t.deepEqual(core.suspicionBounds(1000), { min: 68, max: 272 })
  const gossip = (from: string, updates: SwimUpdate[]): void => core.step(from, { type: 'gossip', updates })
  gossip('b', [{ id: 'e', status: 'suspect', incarnation: 0, from: 'b' }])
  t.is(core.suspicionTimeout('e'), 64)
  gossip('c', [{ id: 'e', status: 'suspect', incarnation: 0, from: 'c' }])
  const one = core.suspicionTimeout('e') as number
  gossip('c', [{ id: 'e', status: 'suspect', incarnation: 0, from: 'c' }])
  t.is(core.suspicionTimeout('e'), one, 'a repeated accuser is not a new confirmation')
  gossip('d', [{ id: 'e', status: 'suspect', incarnation: 0, from: 'd' }])
  const two = core.suspicionTimeout('e') as number
  gossip('d', [{ id: 'e', status: 'suspect', incarnation: 0, from: 'a' }])
  t.true(64 > one && one > two && two > 16, `${one} ${two}`)
  t.is(core.suspicionTimeout('e'), 16)
  t.is(core.suspicionTimeout('b'), undefined)
  // dead once the timeout has passed
  for (let i = 0; i < 15; i++) core.tick()
  t.is(core.member('e')?.status, 'suspect')
  core.tick()
  t.is(core.member('e')?.status, 'dead')
  t.is(core.stats().declaredDead, 1)
})

test('suspicion timeout: shorter after the member\'s connection closed', (t) => {
  const core = new Swim({ id: 'a', members: ['b', 'c', 'd', 'e'], maxLocalHealth: 0 })
  core.hintUnreachable('e')
  const ping = core.ready().messages.find((m) => m.to === 'e' && m.message.type === 'ping')
  t.truthy(ping, 'probed at once')
  for (let i = 0; i < 5 && core.member('e')?.status === 'alive'; i++) core.tick()
  t.is(core.member('e')?.status, 'suspect')
  t.is(core.suspicionTimeout('e'), 45)
  for (const from of ['b', 'c', 'd']) core.step(from, { type: 'gossip', updates: [{ id: 'e', status: 'suspect', incarnation: 0, from }] })
  t.is(core.suspicionTimeout('e'), 12)
  // a suspicion long after the hint is not hinted
  const other = new Swim({ id: 'a', members: ['b', 'c', 'd', 'e'], maxLocalHealth: 0 })
  other.hintUnreachable('e')
  for (let i = 0; i < 30; i++) {
    // everyone answers
    for (const { to, message } of other.ready().messages) if (message.type === 'ping') other.step(to, { type: 'ack', seq: message.seq })
    other.tick()
  }
  t.is(other.member('e')?.status, 'alive')
  other.step('b', { type: 'gossip', updates: [{ id: 'e', status: 'suspect', incarnation: 0, from: 'b' }] })
  t.is(other.suspicionTimeout('e'), 64)
})

// ---------------------------------------------------------------------------
// Precedence rules on one core

function coreWith(...updates: SwimUpdate[]): Swim {
  const core = new Swim({ id: 'me', members: ['x', 'y'], incarnation: 10 })
  core.step('y', { type: 'gossip', updates })
  core.ready()
  return core
}

function after(initial: SwimUpdate[], next: SwimUpdate, via: 'gossip' | 'sync' = 'gossip'): string {
  const core = coreWith(...initial)
  const msg = via === 'sync' ? { type: 'sync', reply: false, updates: [next] } : { type: 'gossip', updates: [next] }
  core.step('y', msg)
  const m = core.member(next.id)
  return m === undefined ? 'unknown' : `${m.status}@${m.incarnation}`
}

const u = (status: MemberStatus, incarnation: number, id = 'x'): SwimUpdate => ({ id, status, incarnation })

test('precedence: higher incarnation wins; at equal incarnation alive < suspect < dead < left', (t) => {
  const cases: Array<[SwimUpdate[], SwimUpdate, string]> = [
    [[u('alive', 5)], u('alive', 4), 'alive@5'],
    [[u('alive', 5)], u('alive', 6), 'alive@6'],
    [[u('alive', 5)], u('suspect', 5), 'suspect@5'],
    [[u('alive', 5)], u('suspect', 4), 'alive@5'],
    [[u('alive', 5)], u('dead', 5), 'dead@5'],
    [[u('alive', 5)], u('dead', 4), 'alive@5'],
    [[u('alive', 5)], u('left', 5), 'left@5'],
    [[u('alive', 5), u('suspect', 5)], u('alive', 5), 'suspect@5'],
    [[u('alive', 5), u('suspect', 5)], u('alive', 6), 'alive@6'],
    [[u('alive', 5), u('suspect', 5)], u('dead', 5), 'dead@5'],
    [[u('alive', 5), u('dead', 5)], u('alive', 5), 'dead@5'],
    [[u('alive', 5), u('dead', 5)], u('suspect', 5), 'dead@5'],
    [[u('alive', 5), u('dead', 5)], u('left', 5), 'left@5'],
    [[u('alive', 5), u('dead', 5)], u('alive', 6), 'alive@6'],
    [[u('alive', 5), u('dead', 5)], u('suspect', 6), 'suspect@6'],
    [[u('alive', 5), u('left', 5)], u('alive', 5), 'left@5'],
    [[u('alive', 5), u('left', 5)], u('dead', 5), 'left@5'],
    [[u('alive', 5), u('left', 5)], u('suspect', 5), 'left@5'],
    [[u('alive', 5), u('left', 5)], u('alive', 6), 'alive@6'],
    // strangers: only alive news adds a member
    [[], u('suspect', 3, 'z'), 'unknown'],
    [[], u('dead', 3, 'z'), 'unknown'],
    [[], u('left', 3, 'z'), 'unknown'],
    [[], u('alive', 3, 'z'), 'alive@3'],
  ]
  for (const [initial, next, want] of cases) {
    const label = `${initial.map((x) => `${x.status}@${x.incarnation}`).join(',') || 'unknown'} + ${next.status}@${next.incarnation}`
    t.is(after(initial, next), want, label)
  }
  t.true(overrides({ status: 'alive', incarnation: 1 }, 'suspect', 1))
  t.false(overrides({ status: 'left', incarnation: 1 }, 'dead', 1))
})

test('precedence: a `dead` from a full-state sync only makes us suspect', (t) => {
  t.is(after([u('alive', 5)], u('dead', 5), 'sync'), 'suspect@5')
  t.is(after([u('alive', 5)], u('left', 5), 'sync'), 'left@5')
  t.is(after([u('alive', 5)], u('alive', 7), 'sync'), 'alive@7')
})

test('refutation: news about ourselves', (t) => {
  const sent = (core: Swim): SwimMessage[] => core.ready().messages.map((m) => m.message)
  // suspect at our incarnation: bump and disseminate alive
  const a = coreWith()
  a.step('y', { type: 'gossip', updates: [u('suspect', 10, 'me')] })
  t.is(a.incarnation, 11)
  t.is(a.localHealth, 1)
  a.step('x', { type: 'ping', seq: 1 })
  const ack = sent(a).find((m) => m.type === 'ack')
  t.deepEqual(ack?.updates?.find((x) => x.id === 'me'), { id: 'me', status: 'alive', incarnation: 11 })
  // dead at a higher incarnation than ours (an earlier life): overtake it
  const b = coreWith()
  b.step('y', { type: 'gossip', updates: [u('dead', 15, 'me')] })
  t.is(b.incarnation, 16)
  // alive at a higher incarnation (an earlier life): overtake it
  const c = coreWith()
  c.step('y', { type: 'gossip', updates: [u('alive', 20, 'me')] })
  t.is(c.incarnation, 21)
  // old news: no bump, but the sender is told our current incarnation
  const d = coreWith()
  d.step('y', { type: 'gossip', updates: [u('dead', 9, 'me')] })
  t.is(d.incarnation, 10)
  const told = d.ready().messages.find((m) => m.to === 'y' && m.message.type === 'gossip')
  t.deepEqual(told?.message.updates, [{ id: 'me', status: 'alive', incarnation: 10 }])
  // alive at our own incarnation: nothing
  const e = coreWith()
  e.step('y', { type: 'gossip', updates: [u('alive', 10, 'me')] })
  t.is(e.incarnation, 10)
  t.is(e.stats().refutations, 0)
})

test('removeMember: gossip no newer than what we knew does not bring it back', (t) => {
  const core = coreWith(u('alive', 5))
  core.removeMember('x')
  t.is(core.member('x'), undefined)
  core.step('y', { type: 'gossip', updates: [u('alive', 5)] })
  t.is(core.member('x'), undefined)
  core.step('y', { type: 'gossip', updates: [u('alive', 6)] })
  t.is(core.member('x')?.status, 'alive')
  core.removeMember('x')
  core.addMember('x')
  t.is(core.member('x')?.status, 'alive', 'addMember always works')
})

test('probe mechanics: ping, ack, ping-req relay, nack', (t) => {
  const a = new Swim({ id: 'a', members: ['b', 'c'], seed: 1 })
  a.ready()
  a.tick()
  const ping = a.ready().messages.find((m) => m.message.type === 'ping')
  t.truthy(ping)
  const target = ping?.to as string
  const helper = target === 'b' ? 'c' : 'b'
  const seq = (ping?.message as { seq: number }).seq
  // no ack within probeTimeoutTicks (2): ping-req to the other member, and a second ping
  const probeTraffic = (core: Swim): Array<{ to: string; message: SwimMessage }> =>
    core.ready().messages.filter((m) => m.message.type !== 'gossip')
  a.tick()
  t.deepEqual(probeTraffic(a), [])
  a.tick()
  const out = probeTraffic(a)
  t.truthy(out.find((m) => m.to === helper && m.message.type === 'ping-req' && m.message.seq === seq && m.message.target === target))
  t.truthy(out.find((m) => m.to === target && m.message.type === 'ping' && m.message.seq === seq))
  // an ack relayed by the helper ends the probe
  a.step(helper, { type: 'ack', seq })
  for (let i = 0; i < 5; i++) a.tick()
  t.is(a.member(target)?.status, 'alive')
  t.is(a.stats().probeFailures, 0)
  // an ack from a member that was neither the target nor a helper is ignored
  const b = new Swim({ id: 'b', members: ['x', 'y', 'z'], seed: 2, indirectChecks: 1 })
  b.tick()
  const p2 = b.ready().messages.find((m) => m.message.type === 'ping')
  const t2 = p2?.to as string
  const s2 = (p2?.message as { seq: number }).seq
  const stranger = ['x', 'y', 'z'].find((id) => id !== t2) as string
  b.step(stranger, { type: 'ack', seq: s2 })
  for (let i = 0; i < 5; i++) b.tick()
  t.is(b.member(t2)?.status, 'suspect')
  t.is(b.stats().probeFailures, 1)
  t.is(b.localHealth, 1, 'the helper sent no nack: local health +1')

  // the helper side: ping the target, relay its ack, or nack after probeTimeoutTicks
  const h = new Swim({ id: 'h', members: ['r', 't'], seed: 3 })
  h.ready()
  h.step('r', { type: 'ping-req', seq: 77, target: 't' })
  const relayPing = h.ready().messages.find((m) => m.to === 't' && m.message.type === 'ping')
  t.truthy(relayPing)
  h.step('t', { type: 'ack', seq: (relayPing?.message as { seq: number }).seq })
  t.truthy(h.ready().messages.find((m) => m.to === 'r' && m.message.type === 'ack' && m.message.seq === 77))
  h.step('r', { type: 'ping-req', seq: 78, target: 't' })
  h.ready()
  h.tick()
  h.tick()
  t.truthy(h.ready().messages.find((m) => m.to === 'r' && m.message.type === 'nack' && m.message.seq === 78))
})

test('hintUnreachable probes at once, at most once per probe period, and ignores dead members', (t) => {
  const a = new Swim({ id: 'a', members: ['b', 'c', 'd'], seed: 1 })
  a.tick()
  a.ready()
  a.hintUnreachable('d')
  a.hintUnreachable('d')
  const pings = a.ready().messages.filter((m) => m.to === 'd' && m.message.type === 'ping')
  t.true(pings.length <= 1)
  a.hintUnreachable('nobody')
  t.deepEqual(a.ready().messages, [])
})

test('malformed messages are dropped and counted, never thrown', (t) => {
  const junk: unknown[] = [
    null, undefined, 42, 'ping', [], {}, new Uint8Array(3),
    { type: 'ping' }, { type: 'ping', seq: -1 }, { type: 'ping', seq: 1.5 }, { type: 'ping', seq: '1' },
    { type: 'ping', seq: 1, updates: 'x' }, { type: 'ping', seq: 1, updates: [null] },
    { type: 'ping', seq: 1, updates: [{ id: '', status: 'alive', incarnation: 1 }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'zombie', incarnation: 1 }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: -1 }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: Number.NaN }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: Infinity }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: 2 ** 60 }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: Number.MAX_SAFE_INTEGER }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: 1, addrs: 'a' }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: 1, addrs: [1] }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x', status: 'suspect', incarnation: 1, from: 5 }] },
    { type: 'ping', seq: 1, updates: [{ id: 'x'.repeat(300), status: 'alive', incarnation: 1 }] },
    { type: 'ping', seq: 1, updates: Array.from({ length: 20_000 }, () => ({ id: 'x', status: 'alive', incarnation: 1 })) },
    { type: 'ping-req', seq: 1 }, { type: 'ping-req', seq: 1, target: '' },
    { type: 'gossip' }, { type: 'gossip', updates: {} },
    { type: 'sync', updates: [] }, { type: 'sync', reply: 'yes', updates: [] },
    { type: 'hello', seq: 1 }, { type: ['ping'], seq: 1 },
  ]
  const core = new Swim({ id: 'me', members: ['p'], incarnation: 3 })
  core.ready()
  for (const m of junk) t.notThrows(() => core.step('p', m))
  t.notThrows(() => core.step('', { type: 'ping', seq: 1 }))
  t.notThrows(() => core.step(7 as unknown as string, { type: 'ping', seq: 1 }))
  t.is(core.stats().malformed, junk.length + 2)
  t.deepEqual(core.ready().messages, [], 'no answer to junk')
  t.is(core.incarnation, 3)
  t.deepEqual(core.members().map((m) => m.id), ['me', 'p'])
  // and it still works
  core.step('p', { type: 'ping', seq: 9 })
  t.is(core.ready().messages[0]?.message.type, 'ack')
  t.is(parseSwimMessage({ type: 'ping', seq: 1, updates: [{ id: 'x', status: 'alive', incarnation: 1, from: null, addrs: null }] })?.type, 'ping')
})

test('the same seed gives the same run', (t) => {
  const run = (): string[] => {
    const sim = new SwimSim({ seed: 99, nodes: 6, loss: 0.2, maxDelay: 2 })
    sim.run(300)
    sim.crash('n5', { hint: true })
    sim.run(300)
    return sim.trace()
  }
  const a = run()
  t.true(a.length > 10)
  t.deepEqual(run(), a)
})

test('a member we were only told about is not passed on until we hear from or about it', (t) => {
  const core = new Swim({ id: 'me', members: ['seed'], incarnation: 3 })
  core.addMember('told')
  core.ready()
  const stateIds = (): string[] => {
    core.step('seed', { type: 'sync', reply: true, updates: [] })
    const reply = core.ready().messages.find((m) => m.message.type === 'sync')?.message
    return (reply?.updates ?? []).map((u) => u.id).sort()
  }
  t.deepEqual(stateIds(), ['me', 'seed'])
  core.step('told', { type: 'gossip', updates: [] })
  t.deepEqual(stateIds(), ['me', 'seed', 'told'])
})
