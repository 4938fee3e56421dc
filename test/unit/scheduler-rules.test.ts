// Constraints, affinities and spread: table tests per feasibility check and
// ranking component, then whole-scheduler behaviour.
import test from 'ava'
import { compileRule, parseTarget, parseVersion, parseVersionRange, schedule } from '../../src/scheduler/index.ts'
import {
  constraintsHold, distinctHosts, distinctProperty, driversPresent, FEASIBILITY_CHAIN, nodeEligible, nodeReady, resourcesFit, staticPortsFree,
  type FeasibilityCheck, type FeasibilityContext,
} from '../../src/scheduler/feasible.ts'
import { JobAllocTracker } from '../../src/scheduler/job-allocs.ts'
import { allocationSpread, binPack, jobAntiAffinity, nodeAffinity, rankNode, spreadValues, type RankContext } from '../../src/scheduler/rank.ts'
import { groupRules } from '../../src/scheduler/rules.ts'
import { UsageTracker } from '../../src/scheduler/usage.ts'
import type { Affinity, Allocation, Constraint, ConstraintOperator, Node, Spread, TaskGroup } from '../../src/structs/index.ts'
import { alloc, evaluation, group, idSource, job, node, schedulerState, spec } from './fixtures.ts'


const ctx = (now = 1_000_000) => ({ now, newId: idSource() })
const c = (attribute: string, operator: ConstraintOperator, value = '', scope?: 'job'): Constraint =>
  ({ attribute, operator, value, ...(scope ? { scope } : {}) })
const withRules = (g: TaskGroup, rules: Partial<Pick<TaskGroup, 'constraints' | 'affinities' | 'spreads'>>): TaskGroup => ({ ...g, ...rules })
const rack = (name: string, r: string | undefined, over: Partial<Node> = {}) => node(name, { meta: r === undefined ? {} : { rack: r }, ...over })

function feasibility(g: TaskGroup, nodes: Node[], allocs: Allocation[] = [], jobId = 'web'): FeasibilityContext {
  const usage = new UsageTracker((id) => allocs.filter((a) => a.nodeId === id))
  const jobAllocs = new JobAllocTracker(allocs.filter((a) => a.jobId === jobId), new Map(nodes.map((n) => [n.id, n])))
  return { rules: groupRules(jobId, g), usage, jobAllocs }
}

// --- Targets and operators ---------------------------------------------------------

test('targets: literals, node fields, attributes and meta; malformed ones explain the forms', (t) => {
  t.deepEqual(parseTarget('a'), { kind: 'literal', value: 'a' })
  t.deepEqual(parseTarget('${node.name}'), { kind: 'node', field: 'name' })
  t.deepEqual(parseTarget('${node.unique.id}'), { kind: 'node', field: 'id' })
  t.deepEqual(parseTarget('${attr.unique.hostname}'), { kind: 'attr', key: 'unique.hostname' })
  t.deepEqual(parseTarget('${meta.rack}'), { kind: 'meta', key: 'rack' })
  t.regex(parseTarget('${meta.}') as string, /needs a key/)
  t.regex(parseTarget('${node.datacenter}') as string, /unknown interpolation/)
  t.regex(parseTarget('rack-${meta.rack}') as string, /one interpolation/)
})

test('versions: numeric segments, suffixes ignored; ranges of clauses', (t) => {
  t.deepEqual(parseVersion('6.8.0-1017-aws'), [6, 8, 0])
  t.deepEqual(parseVersion('v1.2'), [1, 2])
  t.is(parseVersion('abc'), undefined)
  t.deepEqual(parseVersionRange('>= 1.2, < 2.0'), [{ op: '>=', version: [1, 2] }, { op: '<', version: [2, 0] }])
  t.deepEqual(parseVersionRange('1.0'), [{ op: '=', version: [1, 0] }])
  t.regex(parseVersionRange('>= x') as string, /not a version constraint/)
})

const OPERATOR_TABLE: [string | undefined, ConstraintOperator, string, 'ok' | 'missing' | 'no'][] = [
  ['a', '=', 'a', 'ok'], ['a', '=', 'b', 'no'], [undefined, '=', 'a', 'missing'],
  ['a', '!=', 'b', 'ok'], ['a', '!=', 'a', 'no'], [undefined, '!=', 'a', 'missing'],
  ['10', '>', '9', 'ok'], ['10', '<', '9', 'no'], ['b', '>', 'a', 'ok'], ['10', '<', '9x', 'ok'],
  ['4', '>=', '4', 'ok'], ['4', '<=', '3.5', 'no'], ['-1', '<', '0', 'ok'],
  ['linux', 'regexp', '^lin', 'ok'], ['darwin', 'regexp', '^lin', 'no'], ['x86_64', 'regexp', '64', 'ok'],
  ['a,b,c', 'set_contains', 'a,c', 'ok'], ['a, b', 'set_contains', 'b', 'ok'], ['a,b', 'set_contains', 'a,d', 'no'],
  ['1.5.2', 'version', '>= 1.2, < 2.0', 'ok'], ['2.0', 'version', '>= 1.2, < 2.0', 'no'], ['6.8.0-1017-aws', 'version', '>= 5.15', 'ok'],
  ['1.2.9', 'version', '~> 1.2.3', 'ok'], ['1.3.0', 'version', '~> 1.2.3', 'no'], ['1.9', 'version', '~> 1.2', 'ok'], ['2.0', 'version', '~> 1.2', 'no'],
  ['abc', 'version', '>= 1', 'no'], ['1.0', 'version', '!= 1', 'no'],
  ['x', 'is_set', '', 'ok'], [undefined, 'is_set', '', 'missing'], [undefined, 'is_not_set', '', 'ok'], ['x', 'is_not_set', '', 'no'],
]

for (const [have, op, value, expected] of OPERATOR_TABLE) {
  test(`operator: \${meta.v} = ${JSON.stringify(have)} ${op} ${JSON.stringify(value)} → ${expected}`, (t) => {
    const r = compileRule(c('${meta.v}', op, value)).test(node('n', { meta: have === undefined ? {} : { v: have } }))
    t.is(r.ok ? 'ok' : r.missing !== undefined ? 'missing' : 'no', expected)
  })
}

test('an interpolated value is resolved on the node too; missing there fails the rule', (t) => {
  const rule = compileRule(c('${meta.zone}', '=', '${meta.home}'))
  t.true(rule.test(node('n', { meta: { zone: 'z1', home: 'z1' } })).ok)
  t.false(rule.test(node('n', { meta: { zone: 'z1', home: 'z2' } })).ok)
  t.deepEqual(rule.test(node('n', { meta: { zone: 'z1' } })), { ok: false, missing: '${meta.home}' })
  t.true(compileRule(c('${node.name}', '=', 'n7')).test(node('n7')).ok)
  t.true(compileRule(c('${node.id}', '=', 'id-n7')).test(node('n7')).ok)
  t.true(compileRule(c('${attr.cpu.arch}', '=', 'arm64')).test(node('n', { attributes: { 'cpu.arch': 'arm64' } })).ok)
})

test('attributes are own properties only: "${meta.constructor}" is not set on a node without it', (t) => {
  t.deepEqual(compileRule(c('${meta.constructor}', 'is_set')).test(node('n')), { ok: false, missing: '${meta.constructor}' })
})

// --- Feasibility checks, one table each ----------------------------------------------

interface Row { name: string; node: Node; group?: TaskGroup; allocs?: Allocation[]; nodes?: Node[]; expect: null | { kind: string; reason: string; detail?: RegExp } }

function checkTable(title: string, check: FeasibilityCheck, rows: Row[]) {
  for (const r of rows) {
    test(`${title}: ${r.name}`, (t) => {
      const g = r.group ?? group('fe', 3)
      const got = check(r.node, feasibility(g, r.nodes ?? [r.node], r.allocs ?? []))
      if (r.expect === null) return t.is(got, null)
      t.like(got, { kind: r.expect.kind, reason: r.expect.reason })
      if (r.expect.detail) t.regex(got!.detail, r.expect.detail)
    })
  }
}

checkTable('nodeReady', nodeReady, [
  { name: 'ready passes', node: node('n1'), expect: null },
  { name: 'down is filtered', node: node('n1', { status: 'down' }), expect: { kind: 'filtered', reason: 'node not ready', detail: /node n1: status down/ } },
  { name: 'initializing is filtered', node: node('n1', { status: 'initializing' }), expect: { kind: 'filtered', reason: 'node not ready' } },
])

checkTable('nodeEligible', nodeEligible, [
  { name: 'eligible passes', node: node('n1'), expect: null },
  { name: 'ineligible is filtered', node: node('n1', { eligible: false }), expect: { kind: 'filtered', reason: 'node ineligible' } },
])

checkTable('driversPresent', driversPresent, [
  { name: 'docker present', node: node('n1'), expect: null },
  { name: 'docker missing', node: node('n1', { drivers: ['exec'] }), expect: { kind: 'filtered', reason: 'missing driver "docker"' } },
])

const inRackA = withRules(group('fe', 3), { constraints: [c('${meta.rack}', '=', 'a')] })
const notRackA = withRules(group('fe', 3), { constraints: [c('${meta.rack}', '!=', 'a')] })
const taskLevel = group('fe', 3)
taskLevel.tasks[0] = { ...taskLevel.tasks[0]!, constraints: [c('${attr.cpu.numcores}', '>=', '4')] }
checkTable('constraintsHold', constraintsHold, [
  { name: 'no constraints', node: rack('n1', undefined), expect: null },
  { name: 'rack a = a', node: rack('n1', 'a'), group: inRackA, expect: null },
  { name: 'rack b = a is filtered, named after the constraint', node: rack('n1', 'b'), group: inRackA,
    expect: { kind: 'filtered', reason: 'constraint ${meta.rack} = a', detail: /^node n1: \$\{meta\.rack\} is "b" \(constraint \$\{meta\.rack\} = a\)$/ } },
  { name: 'missing rack fails even for !=', node: rack('n1', undefined), group: notRackA,
    expect: { kind: 'filtered', reason: 'constraint ${meta.rack} != a: attribute missing', detail: /node n1: \$\{meta\.rack\} is not set/ } },
  { name: 'rack b != a', node: rack('n1', 'b'), group: notRackA, expect: null },
  { name: 'task-level constraint applies to the group', node: node('n1', { attributes: { 'cpu.numcores': '2' } }), group: taskLevel,
    expect: { kind: 'filtered', reason: 'constraint ${attr.cpu.numcores} >= 4' } },
  { name: 'task-level constraint met (numeric, not lexical: 16 >= 4)', node: node('n1', { attributes: { 'cpu.numcores': '16' } }), group: taskLevel, expect: null },
])

const dh = withRules(group('fe', 3), { constraints: [c('', 'distinct_hosts', 'true')] })
const dhOff = withRules(group('fe', 3), { constraints: [c('', 'distinct_hosts', 'false')] })
const dhJob = withRules(group('fe', 3), { constraints: [c('', 'distinct_hosts', 'true', 'job')] })
const web = job(spec('web', [group('fe', 3), group('be', 1)]))
checkTable('distinctHosts', distinctHosts, [
  { name: 'empty node', node: node('n1'), group: dh, expect: null },
  { name: 'node running the group is filtered', node: node('n1'), group: dh, allocs: [alloc('x', web, 'fe', 0, 'id-n1')],
    expect: { kind: 'filtered', reason: 'constraint distinct_hosts', detail: /already runs 1 allocation\(s\) of group web\.fe/ } },
  { name: 'another group of the job is fine (group scope)', node: node('n1'), group: dh, allocs: [alloc('x', web, 'be', 0, 'id-n1')], expect: null },
  { name: 'another group of the job is not (job scope)', node: node('n1'), group: dhJob, allocs: [alloc('x', web, 'be', 0, 'id-n1')],
    expect: { kind: 'filtered', reason: 'constraint distinct_hosts', detail: /of job web/ } },
  { name: 'another job is fine', node: node('n1'), group: dhJob, allocs: [alloc('x', job(spec('other', [group('fe', 1)])), 'fe', 0, 'id-n1')], expect: null },
  { name: 'a stopped allocation does not count', node: node('n1'), group: dh, allocs: [alloc('x', web, 'fe', 0, 'id-n1', { desiredStatus: 'stop' })], expect: null },
  { name: 'value "false" turns it off', node: node('n1'), group: dhOff, allocs: [alloc('x', web, 'fe', 0, 'id-n1')], expect: null },
])

const dp = (limit: string, scope?: 'job') => withRules(group('fe', 3), { constraints: [c('${meta.rack}', 'distinct_property', limit, scope)] })
const racks = [rack('n1', 'a'), rack('n2', 'a'), rack('n3', 'b')]
checkTable('distinctProperty', distinctProperty, [
  { name: 'no allocations yet', node: racks[0]!, nodes: racks, group: dp('1'), expect: null },
  { name: 'rack a taken, other node in rack a is filtered', node: racks[1]!, nodes: racks, group: dp('1'), allocs: [alloc('x', web, 'fe', 0, 'id-n1')],
    expect: { kind: 'filtered', reason: 'constraint ${meta.rack} distinct_property 1', detail: /node n2: \$\{meta\.rack\} = "a" already has 1 allocation\(s\) of group web\.fe \(limit 1\)/ } },
  { name: 'rack b is still free', node: racks[2]!, nodes: racks, group: dp('1'), allocs: [alloc('x', web, 'fe', 0, 'id-n1')], expect: null },
  { name: 'limit 2 allows a second', node: racks[1]!, nodes: racks, group: dp('2'), allocs: [alloc('x', web, 'fe', 0, 'id-n1')], expect: null },
  { name: 'group scope ignores other groups', node: racks[1]!, nodes: racks, group: dp('1'), allocs: [alloc('x', web, 'be', 0, 'id-n1')], expect: null },
  { name: 'job scope counts other groups', node: racks[1]!, nodes: racks, group: dp('1', 'job'), allocs: [alloc('x', web, 'be', 0, 'id-n1')],
    expect: { kind: 'filtered', reason: 'constraint ${meta.rack} distinct_property 1', detail: /of job web/ } },
  { name: 'a node without the property is filtered', node: rack('n4', undefined), group: dp('1'),
    expect: { kind: 'filtered', reason: 'constraint ${meta.rack} distinct_property 1: attribute missing' } },
  { name: 'failed allocations do not count', node: racks[1]!, nodes: racks, group: dp('1'), allocs: [alloc('x', web, 'fe', 0, 'id-n1', { clientStatus: 'failed' })], expect: null },
])

const big = group('fe', 1)
big.tasks[0]!.resources = { cpu: 600, memoryMB: 64 }
checkTable('resourcesFit', resourcesFit, [
  { name: 'fits', node: node('n1'), group: big, expect: null },
  { name: 'cpu exhausted', node: node('n1'), group: big, allocs: [alloc('x', web, 'fe', 0, 'id-n1', { resources: { cpu: 500, memoryMB: 10, ports: [] } })],
    expect: { kind: 'exhausted', reason: 'cpu', detail: /need 600 MHz, free 500 MHz/ } },
])

const fixed = group('fe', 1, { ports: [{ label: 'http', static: 8080 }] })
checkTable('staticPortsFree', staticPortsFree, [
  { name: 'free', node: node('n1'), group: fixed, expect: null },
  { name: 'taken', node: node('n1'), group: fixed, allocs: [alloc('x', web, 'fe', 0, 'id-n1', { resources: { cpu: 1, memoryMB: 1, ports: [{ label: 'http', value: 8080, to: 8080, hostIp: '' }] } })],
    expect: { kind: 'exhausted', reason: 'port 8080' } },
])

test('the chain runs node checks, then constraints, then distinct_*, then capacity', (t) => {
  t.deepEqual(FEASIBILITY_CHAIN, [nodeReady, nodeEligible, driversPresent, constraintsHold, distinctHosts, distinctProperty, resourcesFit, staticPortsFree])
})

// --- Ranking components, one table each ------------------------------------------------

function ranking(g: TaskGroup, nodes: Node[], allocs: Allocation[] = [], feasible = nodes): RankContext {
  const f = feasibility(g, nodes, allocs)
  return { ...f, need: { cpu: 100, memoryMB: 64 }, spreadValues: spreadValues(f.rules.spreads, feasible) }
}

test('binPack: fuller nodes score higher', (t) => {
  const n = node('n1')
  const empty = binPack(n, ranking(group('fe', 1), [n]))!
  const busy = binPack(n, ranking(group('fe', 1), [n], [alloc('x', job(spec('o', [group('g', 1)])), 'g', 0, 'id-n1')]))!
  t.true(busy > empty)
  t.true(Math.abs(empty - (0.1 + 64 / 1024) / 2) < 1e-12)
})

test('jobAntiAffinity: 0 without collisions, -(collisions + 1) / count with them', (t) => {
  const n = node('n1')
  t.is(jobAntiAffinity(n, ranking(group('fe', 4), [n])), 0)
  t.is(jobAntiAffinity(n, ranking(group('fe', 4), [n], [alloc('x', web, 'fe', 0, 'id-n1')])), -0.5)
  t.is(jobAntiAffinity(n, ranking(group('fe', 4), [n], [alloc('x', web, 'fe', 0, 'id-n1'), alloc('y', web, 'fe', 1, 'id-n1')])), -0.75)
})

const aff = (...affinities: Affinity[]) => withRules(group('fe', 2), { affinities })
const AFFINITY_TABLE: [string, TaskGroup, Node, number | null][] = [
  ['no affinities: nothing to say', group('fe', 2), rack('n', 'a'), null],
  ['match, weight 50', aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 50 }), rack('n', 'a'), 0.5],
  ['no match', aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 50 }), rack('n', 'b'), 0],
  ['missing attribute: no match', aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 50 }), rack('n', undefined), 0],
  ['negative weight repels', aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: -100 }), rack('n', 'a'), -1],
  ['mean over affinities', aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 100 }, { attribute: '${node.name}', operator: '=', value: 'x', weight: 60 }), rack('n', 'a'), 0.5],
]
for (const [name, g, n, expected] of AFFINITY_TABLE) {
  test(`nodeAffinity: ${name}`, (t) => {
    t.is(nodeAffinity(n, ranking(g, [n])), expected)
  })
}

const spreadGroup = (count: number, ...spreads: Spread[]) => withRules(group('fe', count), { spreads })
const sp = (targets: [string, number][] = [], weight = 50): Spread => ({ attribute: '${meta.rack}', weight, targets: targets.map(([value, percent]) => ({ value, percent })) })
const SPREAD_NODES = [rack('n1', 'a'), rack('n2', 'b'), rack('n3', 'c'), rack('n4', undefined)]
const SPREAD_TABLE: [string, TaskGroup, number, string[], number | null][] = [
  // [case, group, node index, racks of existing allocations of the group, expected]
  ['no spreads: nothing to say', group('fe', 4), 0, [], null],
  ['target 50% of 4 = 2 desired, none yet: (2 - ½) / 2', spreadGroup(4, sp([['a', 50], ['b', 50]])), 0, [], 0.75],
  ['target reached: (2 - 2½) / 2', spreadGroup(4, sp([['a', 50], ['b', 50]])), 0, ['a', 'a'], -0.25],
  ['far over target: clamped to -1', spreadGroup(4, sp([['a', 50], ['b', 50]])), 0, ['a', 'a', 'a', 'a', 'a'], -1],
  ['value without a target when targets take 100%: -1', spreadGroup(4, sp([['a', 50], ['b', 50]])), 2, [], -1],
  ['leftover percent shared by the other values seen (c only): 20% of 10 = 2', spreadGroup(10, sp([['a', 40], ['b', 40]])), 2, [], 0.75],
  ['even: 3 values seen, 6 allocations, 2 each: (2 - ½) / 2', spreadGroup(6, sp()), 1, [], 0.75],
  ['even: value already at its share', spreadGroup(6, sp()), 1, ['b', 'b'], -0.25],
  ['node without the attribute: -1', spreadGroup(6, sp()), 3, [], -1],
  ['target of 0%: -1', spreadGroup(4, sp([['a', 0], ['b', 100]])), 0, [], -1],
  ['weights are relative: (50·0.75 + 150·(-1)) / 200', spreadGroup(4, sp([['a', 50], ['b', 50]]), { attribute: '${node.name}', weight: 150, targets: [{ value: 'zz', percent: 100 }] }), 0, [], (37.5 - 150) / 200],
]
for (const [name, g, i, existing, expected] of SPREAD_TABLE) {
  test(`allocationSpread: ${name}`, (t) => {
    const allocs = existing.map((r, k) => alloc(`x${k}`, web, 'fe', k, SPREAD_NODES.find((n) => n.meta.rack === r)!.id))
    t.is(allocationSpread(SPREAD_NODES[i]!, ranking(g, SPREAD_NODES, allocs)), expected)
  })
}

test('rankNode averages the components that apply', (t) => {
  const n = rack('n1', 'a')
  const g = aff({ attribute: '${meta.rack}', operator: '=', value: 'a', weight: 50 })
  const r = rankNode(n, ranking(g, [n]))
  t.deepEqual(Object.keys(r.components), ['binpack', 'job-anti-affinity', 'node-affinity'])
  t.is(r.score, (r.components.binpack! + 0 + 0.5) / 3)
})

// --- The scheduler with rules --------------------------------------------------------------

test('constraints filter nodes; failures count each constraint and name the node', (t) => {
  const g = withRules(group('fe', 2), { constraints: [c('${meta.rack}', '!=', 'a')] })
  const nodes = [rack('n1', 'a'), rack('n2', undefined), rack('n3', 'b')]
  const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId), ['id-n3', 'id-n3'])
  t.deepEqual(plan.evalUpdate.failedGroups, {})
  const tight = withRules(group('fe', 1), { constraints: [c('${meta.rack}', '=', 'z')] })
  const blocked = schedule(schedulerState([job(spec('web', [tight]))], nodes), evaluation('e1', 'web'), ctx())
  t.is(blocked.evalUpdate.status, 'blocked')
  t.deepEqual(blocked.evalUpdate.failedGroups.fe!.filtered, { 'constraint ${meta.rack} = z': 2, 'constraint ${meta.rack} = z: attribute missing': 1 })
  t.deepEqual(blocked.evalUpdate.failedGroups.fe!.details, [
    'node n1: ${meta.rack} is "a" (constraint ${meta.rack} = z)',
    'node n2: ${meta.rack} is not set (constraint ${meta.rack} = z)',
    'node n3: ${meta.rack} is "b" (constraint ${meta.rack} = z)',
  ])
})

test('distinct_hosts: one allocation per node, the rest unplaced with the reason', (t) => {
  const g = withRules(group('fe', 3), { constraints: [c('', 'distinct_hosts', 'true')] })
  const plan = schedule(schedulerState([job(spec('web', [g]))], [node('n1'), node('n2')]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId).sort(), ['id-n1', 'id-n2'])
  t.like(plan.evalUpdate.failedGroups.fe, { unplaced: 1, filtered: { 'constraint distinct_hosts': 2 } })
})

test('distinct_hosts lets a replacement take the node of the allocation it replaces', (t) => {
  const g = withRules(group('fe', 2), { constraints: [c('', 'distinct_hosts', 'true')] })
  const j = job(spec('web', [g]), { version: 1 })
  const old = [alloc('x0', { ...j, version: 0 }, 'fe', 0, 'id-n1'), alloc('x1', { ...j, version: 0 }, 'fe', 1, 'id-n2')]
  const plan = schedule(schedulerState([j], [node('n1'), node('n2')], old), evaluation('e1', 'web'), ctx())
  t.is(plan.place.length, 2)
  t.deepEqual(plan.evalUpdate.failedGroups, {})
})

test('job-level distinct_hosts keeps two groups of the job apart', (t) => {
  const one = withRules(group('a', 1), { constraints: [c('', 'distinct_hosts', 'true', 'job')] })
  const two = withRules(group('b', 1), { constraints: [c('', 'distinct_hosts', 'true', 'job')] })
  const plan = schedule(schedulerState([job(spec('web', [one, two]))], [node('n1'), node('n2')]), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId).sort(), ['id-n1', 'id-n2'])
})

test('distinct_property counts placements of this plan', (t) => {
  const g = withRules(group('fe', 5), { constraints: [c('${meta.rack}', 'distinct_property', '2')] })
  const nodes = [rack('n1', 'a'), rack('n2', 'a'), rack('n3', 'b'), rack('n4', 'b')]
  const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), ctx())
  const perRack = countBy(plan.place.map((a) => nodes.find((n) => n.id === a.nodeId)!.meta.rack!))
  t.deepEqual(perRack, { a: 2, b: 2 })
  t.like(plan.evalUpdate.failedGroups.fe, { unplaced: 1, filtered: { 'constraint ${meta.rack} distinct_property 2': 4 } })
})

test('system jobs skip nodes their constraints filter, without reporting a failure', (t) => {
  const g = withRules(group('g', 1), { constraints: [c('${attr.os.name}', '=', 'linux')] })
  const nodes = [node('n1', { attributes: { 'os.name': 'linux' } }), node('n2', { attributes: { 'os.name': 'darwin' } })]
  const plan = schedule(schedulerState([job(spec('agentd', [g], { type: 'system' }))], nodes), evaluation('e1', 'agentd'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId), ['id-n1'])
  t.is(plan.evalUpdate.status, 'complete')
  const dp1 = withRules(group('g', 1), { constraints: [c('${meta.rack}', 'distinct_property', '1')] })
  const sys = schedule(schedulerState([job(spec('agentd', [dp1], { type: 'system' }))], [rack('n1', 'a'), rack('n2', 'a'), rack('n3', 'b')]), evaluation('e1', 'agentd'), ctx())
  t.deepEqual(sys.place.map((a) => a.nodeId), ['id-n1', 'id-n3'])
  t.is(sys.evalUpdate.status, 'complete')
})

test('affinity prefers matching nodes when capacity allows', (t) => {
  const g = aff({ attribute: '${meta.disk}', operator: '=', value: 'ssd', weight: 50 })
  const nodes = [node('n1'), node('n2', { meta: { disk: 'ssd' } }), node('n3'), node('n4', { meta: { disk: 'ssd' } })]
  const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => a.nodeId).sort(), ['id-n2', 'id-n4'])
  // And a negative weight steers away, even from a fuller node.
  const other = job(spec('other', [group('o', 1)]))
  const busy = alloc('o0', other, 'o', 0, 'id-n2')
  const avoid = aff({ attribute: '${meta.disk}', operator: '=', value: 'ssd', weight: -50 })
  const away = schedule(schedulerState([job(spec('web', [avoid])), other], nodes, [busy]), evaluation('e1', 'web'), ctx())
  t.true(away.place.every((a) => a.nodeId === 'id-n1' || a.nodeId === 'id-n3'))
  // When the matching nodes are full, the others are used.
  const full = { resources: { cpu: 100, memoryMB: 1024 } }
  const small = [node('n1'), node('n2', { meta: { disk: 'ssd' }, ...full })]
  const g3 = withRules(group('fe', 3), { affinities: g.affinities! })
  const spill = schedule(schedulerState([job(spec('web', [g3]))], small), evaluation('e1', 'web'), ctx())
  t.deepEqual(spill.place.map((a) => a.nodeId).sort(), ['id-n1', 'id-n1', 'id-n2'])
})

test('plan scores name the components of the chosen node', (t) => {
  const g = aff({ attribute: '${meta.disk}', operator: '=', value: 'ssd', weight: 50 })
  const plan = schedule(schedulerState([job(spec('web', [g]))], [node('n1', { meta: { disk: 'ssd' } })]), evaluation('e1', 'web'), ctx())
  const s = plan.scores[plan.place[0]!.id]!
  t.is(s.nodeName, 'n1')
  t.deepEqual(Object.keys(s.components), ['binpack', 'job-anti-affinity', 'node-affinity'])
  t.is(s.components['node-affinity'], 0.5)
})

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of values) out[v] = (out[v] ?? 0) + 1
  return out
}

function racksCluster(spec_: Record<string, number>, over: Partial<Node> = {}): Node[] {
  const out: Node[] = []
  for (const [r, n] of Object.entries(spec_)) for (let i = 0; i < n; i++) out.push(rack(`${r}${String(i).padStart(2, '0')}`, r, over))
  return out
}

const SPREAD_CASES: [string, Record<string, number>, [string, number][], number, Record<string, number>][] = [
  // [case, nodes per rack, targets, count, expected allocations per rack]
  ['70/30 over two racks', { a: 10, b: 10 }, [['a', 70], ['b', 30]], 20, { a: 14, b: 6 }],
  ['70/30 with unequal racks', { a: 4, b: 16 }, [['a', 70], ['b', 30]], 10, { a: 7, b: 3 }],
  ['50/25 and the rest to the other rack', { a: 6, b: 6, c: 6 }, [['a', 50], ['b', 25]], 12, { a: 6, b: 3, c: 3 }],
  ['even over three racks', { a: 5, b: 5, c: 5 }, [], 12, { a: 4, b: 4, c: 4 }],
  ['even over unequal racks', { a: 2, b: 10 }, [], 8, { a: 4, b: 4 }],
]
for (const [name, layout, targets, count, expected] of SPREAD_CASES) {
  test(`spread lands allocations on the target percentages: ${name}`, (t) => {
    const nodes = racksCluster(layout, { resources: { cpu: 4000, memoryMB: 8192 } })
    const g = spreadGroup(count, sp(targets))
    const plan = schedule(schedulerState([job(spec('web', [g]))], nodes), evaluation('e1', 'web'), ctx())
    t.is(plan.place.length, count)
    const perRack = countBy(plan.place.map((a) => nodes.find((n) => n.id === a.nodeId)!.meta.rack!))
    for (const [r, want] of Object.entries(expected)) {
      t.true(Math.abs((perRack[r] ?? 0) - want) <= 1, `rack ${r}: ${perRack[r] ?? 0} allocations, target ${want} (${JSON.stringify(perRack)})`)
    }
  })
}

test('spread counts allocations that already run: scaling up fills the rack that lacks', (t) => {
  const nodes = racksCluster({ a: 3, b: 3 })
  const g = spreadGroup(4, sp())
  const j = job(spec('web', [g]))
  const existing = [alloc('x0', j, 'fe', 0, 'id-a00'), alloc('x1', j, 'fe', 1, 'id-a01')]
  const plan = schedule(schedulerState([j], nodes, existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.place.map((a) => nodes.find((n) => n.id === a.nodeId)!.meta.rack), ['b', 'b'])
})

// --- What the plan does, per group ------------------------------------------------------------

test('desiredUpdates: create, ignore, destroy and destructive updates per group', (t) => {
  const j1 = job(spec('web', [group('fe', 3), group('be', 1)]), { version: 1 })
  const existing = [
    alloc('f0', j1, 'fe', 0, 'id-n1'), alloc('f1', j1, 'fe', 1, 'id-n1'),
    alloc('b0', { ...j1, version: 0 }, 'be', 0, 'id-n1'),
    alloc('g0', j1, 'gone', 0, 'id-n1'),
  ]
  const plan = schedule(schedulerState([j1], [node('n1', { resources: { cpu: 4000, memoryMB: 4096 }, portRange: { min: 20000, max: 20100 } })], existing), evaluation('e1', 'web'), ctx())
  t.deepEqual(plan.desiredUpdates, {
    gone: { create: 0, destroy: 1, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 0 },
    fe: { create: 1, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 2 },
    be: { create: 0, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 1, ignore: 0 },
  })
  const down = schedule(schedulerState([job(spec('web', [group('fe', 1)]), { version: 1 })], [node('n1')], existing.slice(0, 2)), evaluation('e2', 'web'), ctx())
  t.like(down.desiredUpdates.fe, { destroy: 1, ignore: 1 })
  const stopped = schedule(schedulerState([job(spec('web', [group('fe', 2)]), { version: 1, stop: true })], [node('n1')], existing.slice(0, 2)), evaluation('e3', 'web'), ctx())
  t.deepEqual(stopped.desiredUpdates, { fe: { create: 0, destroy: 2, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 0 } })
})

test('desiredUpdates count wanted placements even when they cannot be placed', (t) => {
  const g = withRules(group('fe', 2), { constraints: [c('${meta.rack}', '=', 'z')] })
  const plan = schedule(schedulerState([job(spec('web', [g]))], [node('n1')]), evaluation('e1', 'web'), ctx())
  t.like(plan.desiredUpdates.fe, { create: 2 })
  t.is(plan.evalUpdate.failedGroups.fe!.unplaced, 2)
})
