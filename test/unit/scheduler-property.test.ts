// Property tests of the scheduler with placement rules: seeded random
// clusters (random meta and attributes) and random jobs with random
// constraints, affinities and spreads, scheduled over several rounds of
// changes. Hard rules are checked against an oracle written independently of
// the scheduler's own constraint code. SCHED_SEED=n replays one seed.
import test, { type ExecutionContext } from 'ava'
import { schedule, type Plan } from '../../src/scheduler/index.ts'
import type { Affinity, Allocation, Constraint, Job, Node, Spread, TaskGroup } from '../../src/structs/index.ts'
import { groupConstraints, isAllocHealthy } from '../../src/structs/index.ts'
import { evaluation, group, idSource, job, node, schedulerState, spec } from './fixtures.ts'

type Rand = () => number
function mulberry32(seed: number): Rand {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const int = (r: Rand, n: number) => Math.floor(r() * n)
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!
const chance = (r: Rand, p: number) => r() < p

const RACKS = ['a', 'b', 'c', 'd']
const FEATURES = ['gpu', 'ssd', 'fast']

function randomNode(r: Rand, i: number): Node {
  const meta: Record<string, string> = {}
  if (chance(r, 0.9)) meta.rack = pick(r, RACKS)
  if (chance(r, 0.5)) meta.zone = pick(r, ['z1', 'z2'])
  const features = FEATURES.filter(() => chance(r, 0.4))
  if (features.length) meta.features = features.join(',')
  return node(`n${String(i).padStart(2, '0')}`, {
    status: chance(r, 0.92) ? 'ready' : 'down',
    eligible: chance(r, 0.95),
    drivers: chance(r, 0.9) ? ['docker', 'exec'] : ['exec'],
    resources: { cpu: 500 + int(r, 3000), memoryMB: 256 + int(r, 4096) },
    portRange: { min: 20000, max: 20000 + 5 + int(r, 20) },
    attributes: {
      'cpu.numcores': String(pick(r, [1, 2, 4, 8, 16])),
      'kernel.version': `${4 + int(r, 3)}.${int(r, 20)}.${int(r, 10)}${chance(r, 0.3) ? '-generic' : ''}`,
      'os.name': chance(r, 0.8) ? 'linux' : 'darwin',
    },
    meta,
  })
}

function randomConstraint(r: Rand, scope?: 'job'): Constraint {
  const s = scope ? { scope } : {}
  switch (int(r, 11)) {
    case 0: return { attribute: '${meta.rack}', operator: '=', value: pick(r, RACKS), ...s }
    case 1: return { attribute: '${meta.rack}', operator: '!=', value: pick(r, RACKS), ...s }
    case 2: return { attribute: '${attr.cpu.numcores}', operator: '>=', value: String(pick(r, [2, 4, 8])), ...s }
    case 3: return { attribute: '${attr.cpu.numcores}', operator: '<', value: String(pick(r, [4, 16])), ...s }
    case 4: return { attribute: '${attr.kernel.version}', operator: 'version', value: pick(r, ['>= 5.4', '>= 4.10, < 6.5', '~> 5.2']), ...s }
    case 5: return { attribute: '${attr.os.name}', operator: 'regexp', value: pick(r, ['^lin', 'win|dar']), ...s }
    case 6: return { attribute: '${meta.features}', operator: 'set_contains', value: pick(r, ['gpu', 'ssd,fast']), ...s }
    case 7: return { attribute: '${meta.zone}', operator: pick(r, ['is_set', 'is_not_set'] as const), value: '', ...s }
    case 8: return { attribute: '', operator: 'distinct_hosts', value: 'true', ...s }
    default: return { attribute: pick(r, ['${meta.rack}', '${meta.zone}']), operator: 'distinct_property', value: String(1 + int(r, 3)), ...s }
  }
}

function randomAffinity(r: Rand): Affinity {
  return { attribute: '${meta.rack}', operator: '=', value: pick(r, RACKS), weight: pick(r, [-100, -30, 20, 50, 100]) }
}

function randomSpread(r: Rand): Spread {
  if (chance(r, 0.5)) return { attribute: '${meta.rack}', weight: 1 + int(r, 100), targets: [] }
  const first = int(r, 101)
  return { attribute: pick(r, ['${meta.rack}', '${meta.zone}']), weight: 50, targets: [{ value: 'a', percent: first }, { value: 'b', percent: int(r, 101 - first) }] }
}

function randomGroup(r: Rand, name: string, jobRules: Constraint[]): TaskGroup {
  const g = group(name, int(r, 9))
  g.tasks[0]!.resources = { cpu: 50 + int(r, 500), memoryMB: 32 + int(r, 600) }
  if (chance(r, 0.2)) g.ports = [...g.ports, { label: 'admin', static: 9000 + int(r, 3) }]
  const own = Array.from({ length: int(r, 3) }, () => randomConstraint(r))
  const constraints = [...jobRules, ...own]
  if (constraints.length) g.constraints = constraints
  if (chance(r, 0.3)) g.tasks[0] = { ...g.tasks[0]!, constraints: [randomConstraint(r)].filter((c) => c.operator !== 'distinct_hosts' && c.operator !== 'distinct_property') }
  if (chance(r, 0.4)) g.affinities = Array.from({ length: 1 + int(r, 2) }, () => randomAffinity(r))
  if (chance(r, 0.4)) g.spreads = [randomSpread(r)]
  return g
}

function randomJob(r: Rand, id: string, version: number): Job {
  const jobRules = chance(r, 0.4) ? [randomConstraint(r, 'job')] : []
  const groups = Array.from({ length: 1 + int(r, 3) }, (_, i) => randomGroup(r, `g${i}`, jobRules))
  return job(spec(id, groups), { version })
}

// --- The oracle: constraints evaluated the plain way ------------------------------

function lookup(target: string, n: Node): string | undefined {
  if (target === '${node.name}') return n.name
  if (target === '${node.id}') return n.id
  const m = /^\$\{(attr|meta)\.(.+)\}$/.exec(target)
  if (!m) return target
  const table = m[1] === 'attr' ? n.attributes : n.meta
  return Object.hasOwn(table, m[2]!) ? table[m[2]!] : undefined
}

function versionOk(have: string, range: string): boolean {
  const v = /^(\d+)\.(\d+)\.(\d+)/.exec(have)!.slice(1).map(Number)
  const cmp = (w: number[]) => {
    for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (w[i] ?? 0)) return (v[i] ?? 0) < (w[i] ?? 0) ? -1 : 1
    return 0
  }
  return range.split(',').every((clause) => {
    const [, op, ver] = /^\s*(>=|<|~>)\s*([\d.]+)\s*$/.exec(clause)!
    const w = ver!.split('.').map(Number)
    if (op === '>=') return cmp(w) >= 0
    if (op === '<') return cmp(w) < 0
    const upper = w.slice(0, -1)
    upper[upper.length - 1]! += 1
    return cmp(w) >= 0 && cmp(upper) < 0
  })
}

function holds(c: Constraint, n: Node): boolean {
  const l = lookup(c.attribute, n)
  switch (c.operator) {
    case 'is_set': return l !== undefined
    case 'is_not_set': return l === undefined
    case 'distinct_hosts':
    case 'distinct_property': return true // checked over all allocations below
  }
  if (l === undefined) return false
  switch (c.operator) {
    case '=': return l === c.value
    case '!=': return l !== c.value
    case '>=': return Number(l) >= Number(c.value)
    case '<': return Number(l) < Number(c.value)
    case 'regexp': return new RegExp(c.value).test(l)
    case 'set_contains': return c.value.split(',').every((x) => l.split(',').includes(x))
    case 'version': return versionOk(l, c.value)
    default: throw new Error(`oracle lacks ${c.operator}`)
  }
}

// --- The simulation ------------------------------------------------------------------


function apply(allocs: Allocation[], plan: Plan): Allocation[] {
  const stops = new Map(plan.stop.map((s) => [s.allocId, s]))
  const next = allocs.map((a) => {
    const s = stops.get(a.id)
    if (!s) return a
    return { ...a, desiredStatus: 'stop' as const, clientStatus: s.lost ? 'lost' as const : a.clientStatus }
  })
  for (const p of plan.place) next.push({ ...p, clientStatus: 'running', createIndex: 1, modifyIndex: 1 })
  return next
}

const isLive = (a: Allocation) => a.desiredStatus === 'run' && a.clientStatus !== 'failed' && a.clientStatus !== 'lost' && a.clientStatus !== 'complete'


/** Make before break: a migration stops an allocation only when a healthy replacement holds its slot (before the plan, and after it). */
function checkMigrations(t: ExecutionContext, where: string, before: Allocation[], plan: Plan): void {
  const stopped = new Set(plan.stop.map((s) => s.allocId))
  for (const s of plan.stop) {
    const a = before.find((x) => x.id === s.allocId)!
    if (a.desiredTransition?.migrate && !a.desiredTransition.force && s.description !== 'migrated: its replacement is healthy' && s.description !== 'scaled down' &&
      !s.description.startsWith('updated to') && !s.description.startsWith('node down') && s.description !== 'rescheduled after failure' && s.description !== 'group removed from job') {
      t.fail(`${where}: migrating ${a.name} stopped: ${s.description}`)
    }
    if (s.description !== 'migrated: its replacement is healthy') continue
    const partner = before.find((b) => b.jobId === a.jobId && b.group === a.group && b.index === a.index && !b.desiredTransition?.migrate &&
      isLive(b) && isAllocHealthy(b) && !stopped.has(b.id))
    if (!partner) t.fail(`${where}: ${a.name} stopped as migrated without a healthy replacement that stays`)
  }
}

function checkInvariants(t: ExecutionContext, where: string, j: Job, nodes: Node[], allocs: Allocation[], plan: Plan): void {
  const nodeOf = new Map(nodes.map((n) => [n.id, n]))
  const live = allocs.filter(isLive)
  // No overcommit, no shared port, on any node.
  for (const n of nodes) {
    const on = live.filter((a) => a.nodeId === n.id)
    const cpu = on.reduce((s, a) => s + a.resources.cpu, 0)
    const mem = on.reduce((s, a) => s + a.resources.memoryMB, 0)
    if (cpu > n.resources.cpu || mem > n.resources.memoryMB) t.fail(`${where}: node ${n.name} overcommitted (${cpu}/${n.resources.cpu} MHz, ${mem}/${n.resources.memoryMB} MB)`)
    const ports = on.flatMap((a) => a.resources.ports.map((p) => p.value))
    if (new Set(ports).size !== ports.length) t.fail(`${where}: node ${n.name} has a port twice: ${ports.join(',')}`)
  }
  for (const p of plan.place) {
    const n = nodeOf.get(p.nodeId)!
    if (n.status !== 'ready' || !n.eligible) t.fail(`${where}: ${p.name} placed on ${n.status}/${n.eligible ? 'eligible' : 'ineligible'} node ${n.name}`)
  }
  const mine = live.filter((a) => a.jobId === j.id)
  for (const g of j.groups) {
    const ofGroup = mine.filter((a) => a.group === g.name)
    for (const c of groupConstraints(g)) {
      for (const a of ofGroup) {
        if (!holds(c, nodeOf.get(a.nodeId)!)) t.fail(`${where}: ${a.name} on ${nodeOf.get(a.nodeId)!.name} breaks ${JSON.stringify(c)}`)
      }
      const scoped = c.scope === 'job' ? mine : ofGroup
      if (c.operator === 'distinct_hosts') {
        const hosts = scoped.map((a) => a.nodeId)
        if (new Set(hosts).size !== hosts.length) t.fail(`${where}: distinct_hosts (${c.scope ?? 'group'}) broken in group ${g.name}: ${hosts.join(',')}`)
      }
      if (c.operator === 'distinct_property') {
        const per = new Map<string, number>()
        for (const a of scoped) {
          const v = lookup(c.attribute, nodeOf.get(a.nodeId)!)
          if (v !== undefined) per.set(v, (per.get(v) ?? 0) + 1)
        }
        for (const [v, n] of per) if (n > Number(c.value)) t.fail(`${where}: ${c.attribute} = ${v} has ${n} > ${c.value} allocations (${c.scope ?? 'group'})`)
      }
    }
    // Every slot is either held or reported unplaced; a migrating allocation and its replacement hold one.
    const running = allocs.filter((a) => a.jobId === j.id && a.group === g.name && a.desiredStatus === 'run')
    const paired = (a: Allocation) => a.desiredTransition?.migrate && running.some((b) => b.index === a.index && !b.desiredTransition?.migrate)
    // A migrating allocation without a replacement asked for one: it was not placed (counted unplaced).
    const waiting = running.filter((a) => a.desiredTransition?.migrate && !paired(a) && isLive(a)).length
    const held = running.filter((a) => !paired(a)).length - waiting
    const unplaced = plan.evalUpdate.failedGroups[g.name]?.unplaced ?? 0
    if (held + unplaced !== g.count) t.fail(`${where}: group ${g.name} holds ${held} + ${unplaced} unplaced, count ${g.count}`)
  }
}

const SEEDS = process.env.SCHED_SEED ? [Number(process.env.SCHED_SEED)] : Array.from({ length: 300 }, (_, i) => i + 1)

test('property: random rules on random clusters, over rounds of change, never break a hard rule or capacity', (t) => {
  let placements = 0
  let failures = 0
  let migrated = 0
  for (const seed of SEEDS) {
    const r = mulberry32(seed)
    const nodes = Array.from({ length: 2 + int(r, 14) }, (_, i) => randomNode(r, i))
    // Background load from another job, placed by the scheduler itself.
    const bg = job(spec('bg', [Object.assign(group('b', int(r, 10)), { tasks: [{ ...group('b', 1).tasks[0]!, resources: { cpu: 100 + int(r, 400), memoryMB: 64 + int(r, 512) } }] })]))
    let allocs = apply([], schedule(schedulerState([bg], nodes, []), evaluation('e-bg', 'bg'), { now: 0, newId: idSource('bg') }))
    let j = randomJob(r, 'web', 0)
    for (let round = 0; round < 6; round++) {
      const where = `seed ${seed} round ${round}`
      const st = schedulerState([bg, j], nodes, allocs)
      const plan = schedule(st, evaluation(`e${round}`, 'web'), { now: 1_000_000 * (round + 1), newId: idSource(`r${round}-`) })
      const again = schedule(st, evaluation(`e${round}`, 'web'), { now: 1_000_000 * (round + 1), newId: idSource(`r${round}-`) })
      t.deepEqual(again, plan, `${where}: deterministic`)
      checkMigrations(t, where, allocs, plan)
      migrated += plan.stop.filter((x) => x.description === 'migrated: its replacement is healthy').length
      allocs = apply(allocs, plan)
      checkInvariants(t, where, j, nodes, allocs, plan)
      // Half the time what was placed turns healthy before the next round.
      if (chance(r, 0.5)) {
        const placedNow = new Set(plan.place.map((a) => a.id))
        allocs = allocs.map((a) => (placedNow.has(a.id) ? { ...a, deploymentStatus: { healthy: true, timestamp: 0 } } : a))
      }
      placements += plan.place.length
      failures += Object.values(plan.evalUpdate.failedGroups).reduce((n, f) => n + f.unplaced, 0)
      // Change something: a new job version, a node going down, an allocation failing,
      // a node draining (its allocations marked to migrate, some past the deadline), replacements turning healthy.
      const what = int(r, 5)
      if (what === 0) j = { ...randomJob(r, 'web', j.version + 1) }
      else if (what === 3) {
        const i = int(r, nodes.length)
        nodes[i] = { ...nodes[i]!, eligible: false, drain: { startedAt: 0, ignoreSystem: false } }
        const force = chance(r, 0.2)
        allocs = allocs.map((a) => (a.nodeId === nodes[i]!.id && isLive(a) && chance(r, 0.7) ? { ...a, desiredTransition: force ? { migrate: true, force } : { migrate: true } } : a))
      } else if (what === 4) {
        allocs = allocs.map((a) => (isLive(a) && chance(r, 0.6) ? { ...a, deploymentStatus: { healthy: true, timestamp: 0 } } : a))
      }
      else if (what === 1) {
        const i = int(r, nodes.length)
        nodes[i] = { ...nodes[i]!, status: 'down' }
      } else {
        const live = allocs.filter((a) => a.jobId === 'web' && isLive(a))
        if (live.length) {
          const victim = pick(r, live)
          allocs = allocs.map((a) => (a.id === victim.id ? { ...a, clientStatus: 'failed' as const, modifyTime: 0 } : a))
        }
      }
    }
  }
  // The generator is not vacuous: both outcomes happen often.
  t.true(placements > 1000, `placements: ${placements}`)
  t.true(failures > 100, `unplaced: ${failures}`)
  t.true(SEEDS.length === 1 || migrated > 10, `migrations completed: ${migrated}`)
  t.log(`placements ${placements}, unplaced ${failures}, migrations completed ${migrated}`)
})

test('property: spread with targets lands close to the target percentages on large-enough clusters', (t) => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = mulberry32(1000 + seed)
    const racks = RACKS.slice(0, 2 + int(r, 3))
    const nodes = Array.from({ length: 20 + int(r, 40) }, (_, i) =>
      node(`n${String(i).padStart(2, '0')}`, { meta: { rack: racks[i % racks.length]! }, resources: { cpu: 2000 + int(r, 4000), memoryMB: 4096 + int(r, 4096) }, portRange: { min: 20000, max: 20100 } }))
    // Random targets over the racks, summing to 100.
    const cuts = racks.slice(1).map(() => int(r, 101)).sort((a, b) => a - b)
    const bounds = [0, ...cuts, 100]
    const targets = racks.map((value, i) => ({ value, percent: bounds[i + 1]! - bounds[i]! }))
    const count = 20 + int(r, 41)
    const g = Object.assign(group('fe', count), { spreads: [{ attribute: '${meta.rack}', weight: 100, targets }] })
    g.tasks[0]!.resources = { cpu: 50 + int(r, 100), memoryMB: 32 + int(r, 128) }
    const plan = schedule(schedulerState([job(spec('web', [g]))], nodes, []), evaluation('e', 'web'), { now: 0, newId: idSource() })
    t.is(plan.place.length, count, `seed ${seed}: all placed`)
    // Spread is soft: bin-packing still pulls a little (nodes here differ in size).
    const tolerance = Math.max(2, Math.ceil(count * 0.06))
    for (const { value, percent } of targets) {
      const got = plan.place.filter((a) => nodes.find((n) => n.id === a.nodeId)!.meta.rack === value).length
      const want = (percent / 100) * count
      if (Math.abs(got - want) > tolerance) t.fail(`seed ${seed}: rack ${value} got ${got}, target ${want.toFixed(1)} (${percent}% of ${count})`)
    }
  }
})

test('property: a strong affinity puts every allocation on matching nodes when they have room', (t) => {
  for (let seed = 1; seed <= 100; seed++) {
    const r = mulberry32(5000 + seed)
    const nodes = Array.from({ length: 3 + int(r, 12) }, (_, i) =>
      node(`n${String(i).padStart(2, '0')}`, { meta: chance(r, 0.4) ? { disk: 'ssd' } : {}, resources: { cpu: 500 + int(r, 2000), memoryMB: 512 + int(r, 2048) } }))
    const bg = job(spec('bg', [Object.assign(group('b', int(r, 8)), { tasks: [{ ...group('b', 1).tasks[0]!, resources: { cpu: 100 + int(r, 300), memoryMB: 64 + int(r, 256) } }] })]))
    const allocs = apply([], schedule(schedulerState([bg], nodes, []), evaluation('e-bg', 'bg'), { now: 0, newId: idSource('bg') }))
    const need = { cpu: 100, memoryMB: 128 }
    const roomy = nodes.filter((n) => {
      const on = allocs.filter((a) => a.nodeId === n.id)
      return n.meta.disk === 'ssd' && n.resources.cpu - on.reduce((s, a) => s + a.resources.cpu, 0) >= need.cpu &&
        n.resources.memoryMB - on.reduce((s, a) => s + a.resources.memoryMB, 0) >= need.memoryMB && on.length < 9
    })
    if (roomy.length === 0) continue
    const g = Object.assign(group('fe', 1 + int(r, roomy.length)), { affinities: [{ attribute: '${meta.disk}', operator: '=' as const, value: 'ssd', weight: 100 }] })
    g.tasks[0]!.resources = need
    const plan = schedule(schedulerState([bg, job(spec('web', [g]))], nodes, allocs), evaluation('e', 'web'), { now: 0, newId: idSource() })
    t.is(plan.place.length, g.count, `seed ${seed}: all placed`)
    for (const a of plan.place) {
      if (nodes.find((n) => n.id === a.nodeId)!.meta.disk !== 'ssd') t.fail(`seed ${seed}: ${a.name} on a node without ssd although ${roomy.length} ssd node(s) had room`)
    }
  }
})
