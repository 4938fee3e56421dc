// Job files: constraint, affinity and spread blocks at the job, group and task levels.
import test, { type ExecutionContext } from 'ava'
import { formatErrors, parseJobText, validateJob } from '../../src/jobspec/index.ts'
import type { JobSpec } from '../../src/structs/index.ts'

type Json = Record<string, unknown>

/** A job "web" with group "fe" and task "t"; the extras go into each level. */
function file(jobExtra: Json = {}, groupExtra: Json = {}, taskExtra: Json = {}): Json {
  return {
    job: {
      web: {
        ...jobExtra,
        group: { fe: { ...groupExtra, task: { t: { driver: 'exec', config: { command: '/bin/true' }, ...taskExtra } } } },
      },
    },
  }
}

function specOf(raw: unknown): JobSpec {
  const r = validateJob(raw)
  if (!r.ok) throw new Error(`expected a spec, got:\n${formatErrors(r.errors)}`)
  return r.spec
}

function expectErrors(t: ExecutionContext, raw: unknown, expected: string[]) {
  const r = validateJob(raw)
  if (r.ok) return t.fail(`expected errors, got a spec: ${JSON.stringify(r.spec)}`)
  t.deepEqual(formatErrors(r.errors).split('\n'), expected)
}

const J = 'job.web'
const G = 'job.web.group.fe'
const T = `${G}.task.t`
const rack = (operator: string, value: unknown): Json => ({ attribute: '${meta.rack}', operator, value })

// --- Normalisation ------------------------------------------------------------------

test('rules at every level: job-level ones are copied into each group first, marked scope "job"', (t) => {
  const raw = file(
    { constraint: [rack('!=', 'a')], affinity: [{ attribute: '${meta.disk}', value: 'ssd' }], spread: [{ attribute: '${meta.zone}' }] },
    { constraint: [{ operator: 'distinct_hosts' }], affinity: [{ attribute: '${node.name}', operator: 'regexp', value: '^edge', weight: -20 }], spread: [{ attribute: '${meta.rack}', weight: 80, target: [{ value: 'a', percent: 70 }, { value: 'b', percent: 30 }] }] },
    { constraint: [{ attribute: '${attr.cpu.numcores}', operator: '>=', value: '4' }], affinity: [{ attribute: '${attr.os.name}', value: 'linux', weight: 10 }] },
  )
  const g = specOf(raw).groups[0]!
  t.deepEqual(g.constraints, [
    { attribute: '${meta.rack}', operator: '!=', value: 'a', scope: 'job' },
    { attribute: '', operator: 'distinct_hosts', value: 'true' },
  ])
  t.deepEqual(g.affinities, [
    { attribute: '${meta.disk}', operator: '=', value: 'ssd', weight: 50 },
    { attribute: '${node.name}', operator: 'regexp', value: '^edge', weight: -20 },
  ])
  t.deepEqual(g.spreads, [
    { attribute: '${meta.zone}', weight: 50, targets: [] },
    { attribute: '${meta.rack}', weight: 80, targets: [{ value: 'a', percent: 70 }, { value: 'b', percent: 30 }] },
  ])
  t.deepEqual(g.tasks[0]!.constraints, [{ attribute: '${attr.cpu.numcores}', operator: '>=', value: '4' }])
  t.deepEqual(g.tasks[0]!.affinities, [{ attribute: '${attr.os.name}', operator: '=', value: 'linux', weight: 10 }])
})

test('a job-level rule reaches every group', (t) => {
  const raw = file({ constraint: [{ operator: 'distinct_property', attribute: '${meta.rack}' }] })
  const groups = ((raw.job as Json).web as Json).group as Json
  groups.be = groups.fe
  const s = specOf(raw)
  for (const g of s.groups) t.deepEqual(g.constraints, [{ attribute: '${meta.rack}', operator: 'distinct_property', value: '1', scope: 'job' }])
})

test('no rules: the spec has no rule fields at all', (t) => {
  const g = specOf(file({ constraint: [], affinity: [] }, { spread: [] })).groups[0]!
  t.false('constraints' in g)
  t.false('affinities' in g)
  t.false('spreads' in g)
  t.false('constraints' in g.tasks[0]!)
})

test('every operator is accepted with a fitting value', (t) => {
  const constraint = [
    rack('=', 'a'), rack('!=', 'a'), rack('<', '3'), rack('<=', '3'), rack('>', 'b'), rack('>=', 'b'),
    rack('regexp', '^(a|b)$'), rack('set_contains', 'a,b'), { attribute: '${attr.kernel.version}', operator: 'version', value: '>= 5.4, < 7' },
    { attribute: '${meta.rack}', operator: 'is_set' }, { attribute: '${meta.rack}', operator: 'is_not_set' },
    { operator: 'distinct_hosts', value: 'false' }, { attribute: '${meta.rack}', operator: 'distinct_property', value: '3' },
    { attribute: '${node.id}', value: '${meta.home}' }, { attribute: '${node.unique.name}', value: 'n1' },
  ]
  const g = specOf(file({}, { constraint })).groups[0]!
  t.is(g.constraints!.length, constraint.length)
  t.deepEqual(g.constraints![9], { attribute: '${meta.rack}', operator: 'is_set', value: '' })
  t.deepEqual(g.constraints![13], { attribute: '${node.id}', operator: '=', value: '${meta.home}' })
})

test('the text parser takes the same blocks', (t) => {
  const text = `{"job": {"web": {"constraint": [{"attribute": "\${meta.rack}", "operator": "!=", "value": "a"}],
    "group": {"fe": {"task": {"t": {"driver": "exec", "config": {"command": "x"}}}}}}}}`
  const r = parseJobText(text)
  t.true(r.ok)
})

// --- Constraint errors -------------------------------------------------------------------

test('constraint must be an array of objects', (t) => {
  expectErrors(t, file({ constraint: rack('=', 'a') }), [
    `${J}.constraint: must be an array of blocks, like [{"attribute": "\${meta.rack}", "operator": "=", "value": "a"}] (got an object)`,
  ])
  expectErrors(t, file({}, { constraint: ['x', null] }), [`${G}.constraint[0]: must be an object (got "x")`, `${G}.constraint[1]: must be an object (got null)`])
})

test('constraint fields: unknown ones are errors, with hints', (t) => {
  expectErrors(t, file({}, {}, { constraint: [{ ...rack('=', 'a'), weight: 5, l_target: 'x', opertor: '=' }] }), [
    `${T}.constraint[0].weight: unknown field (constraints are hard rules; for a weighted preference use an "affinity" block)`,
    `${T}.constraint[0].l_target: unknown field (Shoal calls it "attribute")`,
    `${T}.constraint[0].opertor: unknown field (did you mean "operator"?)`,
  ])
})

test('constraint attribute: required, a string, an interpolation of a node property', (t) => {
  expectErrors(t, file({}, { constraint: [{ value: 'a' }, { attribute: 3, value: 'a' }, { attribute: ' ', value: 'a' }] }), [
    `${G}.constraint[0].attribute: is required`,
    `${G}.constraint[1].attribute: must be a string (got 3)`,
    `${G}.constraint[2].attribute: must not be empty`,
  ])
  expectErrors(t, file({}, { constraint: [{ attribute: 'meta.rack', value: 'a' }, { attribute: 'rack', value: 'a' }] }), [
    `${G}.constraint[0].attribute: must name a node property as one of \${node.name}, \${node.id}, \${attr.<key>}, \${meta.<key>} (got "meta.rack") (did you mean "\${meta.rack}"?)`,
    `${G}.constraint[1].attribute: must name a node property as one of \${node.name}, \${node.id}, \${attr.<key>}, \${meta.<key>} (got "rack")`,
  ])
  expectErrors(t, file({}, { constraint: [{ attribute: '${node.datacenter}', value: 'a' }, { attribute: '${attr.}', value: 'a' }, { attribute: 'x${meta.rack}', value: 'a' }] }), [
    `${G}.constraint[0].attribute: unknown interpolation "\${node.datacenter}" (known forms: \${node.name}, \${node.id}, \${attr.<key>}, \${meta.<key>})`,
    `${G}.constraint[1].attribute: \${attr.<key>} needs a key, like \${attr.os.name}`,
    `${G}.constraint[2].attribute: must be a literal or one interpolation such as \${meta.rack} (known forms: \${node.name}, \${node.id}, \${attr.<key>}, \${meta.<key>})`,
  ])
})

test('constraint operator: one of the known ones', (t) => {
  expectErrors(t, file({}, { constraint: [rack('==', 'a'), rack('contains', 'a')] }), [
    `${G}.constraint[0].operator: must be one of "=", "!=", "<", "<=", ">", ">=", "regexp", "set_contains", "version", "is_set", "is_not_set", "distinct_hosts", "distinct_property" (got "==")`,
    `${G}.constraint[1].operator: must be one of "=", "!=", "<", "<=", ">", ">=", "regexp", "set_contains", "version", "is_set", "is_not_set", "distinct_hosts", "distinct_property" (got "contains")`,
  ])
})

test('constraint value: required string; numbers are to be quoted; interpolations well formed', (t) => {
  expectErrors(t, file({}, { constraint: [{ attribute: '${meta.rack}' }, rack('>=', 4), rack('=', true), rack('=', ''), rack('=', '${meta}')] }), [
    `${G}.constraint[0].value: is required`,
    `${G}.constraint[1].value: must be a string (got number 4); quote it: "4"`,
    `${G}.constraint[2].value: must be a string (got boolean true); quote it: "true"`,
    `${G}.constraint[3].value: must not be empty`,
    `${G}.constraint[4].value: \${meta.<key>} needs a key, like \${meta.rack}`,
  ])
})

test('an invalid regexp is an error naming the field', (t) => {
  expectErrors(t, file({}, {}, { constraint: [rack('regexp', '(a|b')] }), [
    `${T}.constraint[0].value: is not a valid regular expression: /(a|b/: Unterminated group`,
  ])
})

test('an invalid version constraint is an error naming the field', (t) => {
  expectErrors(t, file({ constraint: [{ attribute: '${attr.kernel.version}', operator: 'version', value: '>= 5.x' }] }), [
    `${J}.constraint[0].value: ">= 5.x" is not a version constraint like ">= 1.2" (operators >= <= != ~> = > <; clauses separated by ",")`,
  ])
  expectErrors(t, file({ constraint: [{ attribute: '${attr.kernel.version}', operator: 'version', value: '>= 5, ' }] }), [
    `${J}.constraint[0].value: "" is not a version constraint like ">= 1.2" (operators >= <= != ~> = > <; clauses separated by ",")`,
  ])
})

test('is_set and is_not_set take no value', (t) => {
  expectErrors(t, file({}, { constraint: [{ attribute: '${meta.rack}', operator: 'is_set', value: 'a' }, { attribute: '${meta.rack}', operator: 'is_not_set', value: 'a' }] }), [
    `${G}.constraint[0].value: must be left out: is_set takes no value`,
    `${G}.constraint[1].value: must be left out: is_not_set takes no value`,
  ])
})

test('distinct_hosts: no attribute; value "true" or "false"', (t) => {
  expectErrors(t, file({}, { constraint: [{ operator: 'distinct_hosts', attribute: '${node.id}' }, { operator: 'distinct_hosts', value: 'yes' }, { operator: 'distinct_hosts', value: true }] }), [
    `${G}.constraint[0].attribute: must be left out: distinct_hosts takes no attribute`,
    `${G}.constraint[1].value: must be "true" or "false" for distinct_hosts (got "yes")`,
    `${G}.constraint[2].value: must be a string (got boolean true); quote it: "true"`,
  ])
})

test('distinct_property: an attribute, and a positive integer limit as a string', (t) => {
  expectErrors(t, file({}, { constraint: [{ operator: 'distinct_property' }, { operator: 'distinct_property', attribute: '${meta.rack}', value: '0' }, { operator: 'distinct_property', attribute: '${meta.rack}', value: 2 }] }), [
    `${G}.constraint[0].attribute: is required`,
    `${G}.constraint[1].value: must be the number of allocations allowed per value, a positive integer as a string like "2" (got "0")`,
    `${G}.constraint[2].value: must be a string (got number 2); quote it: "2"`,
  ])
})

// --- Affinity errors ----------------------------------------------------------------------

test('affinity must be an array of objects with known fields', (t) => {
  expectErrors(t, file({ affinity: {} }), [`${J}.affinity: must be an array of blocks, like [{"attribute": "\${meta.disk}", "value": "ssd", "weight": 50}] (got an object)`])
  expectErrors(t, file({}, { affinity: [{ attribute: '${meta.disk}', value: 'ssd', wieght: 5 }] }), [`${G}.affinity[0].wieght: unknown field (did you mean "weight"?)`])
})

test('affinity weight: an integer from -100 to 100, never 0', (t) => {
  const a = (weight: unknown) => ({ attribute: '${meta.disk}', value: 'ssd', weight })
  expectErrors(t, file({}, {}, { affinity: [a(0), a(101), a(-101), a(2.5), a('50')] }), [
    `${T}.affinity[0].weight: must not be 0 (an affinity of weight 0 does nothing; use -100..-1 to avoid, 1..100 to prefer)`,
    `${T}.affinity[1].weight: must be an integer between -100 and 100 (got 101)`,
    `${T}.affinity[2].weight: must be an integer between -100 and 100 (got -101)`,
    `${T}.affinity[3].weight: must be an integer between -100 and 100 (got 2.5)`,
    `${T}.affinity[4].weight: must be an integer between -100 and 100 (got "50")`,
  ])
  t.deepEqual(specOf(file({}, { affinity: [a(-100), a(100)] })).groups[0]!.affinities!.map((x) => x.weight), [-100, 100])
})

test('affinity attribute, operator and value are checked like a constraint\'s; distinct_* are not affinities', (t) => {
  expectErrors(t, file({}, { affinity: [{ value: 'ssd' }, { attribute: '${meta.disk}', operator: 'distinct_hosts', value: 'x' }, { attribute: '${meta.disk}', operator: 'regexp', value: '[' }, { attribute: '${meta.disk}' }] }), [
    `${G}.affinity[0].attribute: is required`,
    `${G}.affinity[1].operator: must be one of "=", "!=", "<", "<=", ">", ">=", "regexp", "set_contains", "version", "is_set", "is_not_set" (got "distinct_hosts")`,
    `${G}.affinity[2].value: is not a valid regular expression: /[/: Unterminated character class`,
    `${G}.affinity[3].value: is required`,
  ])
})

// --- Spread errors --------------------------------------------------------------------------

test('spread must be an array of objects with known fields', (t) => {
  expectErrors(t, file({}, { spread: 'rack' }), [`${G}.spread: must be an array of blocks, like [{"attribute": "\${meta.rack}", "target": [{"value": "a", "percent": 70}]}] (got "rack")`])
  expectErrors(t, file({}, { spread: [{ attribute: '${meta.rack}', targets: [] }] }), [
    `${G}.spread[0].targets: unknown field (the key is "target", an array like [{"value": "a", "percent": 70}])`,
  ])
})

test('spread attribute is required; weight is 1..100', (t) => {
  expectErrors(t, file({ spread: [{ weight: 50 }, { attribute: '${meta.rack}', weight: 0 }, { attribute: '${meta.rack}', weight: 101 }] }), [
    `${J}.spread[0].attribute: is required`,
    `${J}.spread[1].weight: must be an integer between 1 and 100 (got 0)`,
    `${J}.spread[2].weight: must be an integer between 1 and 100 (got 101)`,
  ])
})

test('spread targets: value and percent, each value once, percents up to 100 in all', (t) => {
  const s = (target: unknown) => file({}, { spread: [{ attribute: '${meta.rack}', target }] })
  expectErrors(t, s({ a: 70 }), [`${G}.spread[0].target: must be an array of blocks, like [{"value": "a", "percent": 70}] (got an object)`])
  expectErrors(t, s([{ value: 'a' }, { percent: 10 }, { value: 'b', percent: 101 }, { value: 'c', percent: -1, share: 1 }]), [
    `${G}.spread[0].target[0].percent: is required: the share of the allocations, 0..100`,
    `${G}.spread[0].target[1].value: is required`,
    `${G}.spread[0].target[2].percent: must be an integer between 0 and 100 (got 101)`,
    `${G}.spread[0].target[3].share: unknown field (expected one of "value", "percent")`,
    `${G}.spread[0].target[3].percent: must be an integer between 0 and 100 (got -1)`,
  ])
  expectErrors(t, s([{ value: 'a', percent: 60 }, { value: 'a', percent: 10 }, { value: '${meta.x}', percent: 10 }, { value: 1, percent: 0 }]), [
    `${G}.spread[0].target[1].value: "a" is targeted more than once`,
    `${G}.spread[0].target[2].value: must be a plain value of the attribute, not an interpolation`,
    `${G}.spread[0].target[3].value: must be a string (got number 1); quote it: "1"`,
  ])
  expectErrors(t, s([{ value: 'a', percent: 70 }, { value: 'b', percent: 40 }]), [`${G}.spread[0].target: percents add up to 110; they must add up to at most 100`])
  t.deepEqual(specOf(s([{ value: 'a', percent: 60 }])).groups[0]!.spreads, [{ attribute: '${meta.rack}', weight: 50, targets: [{ value: 'a', percent: 60 }] }])
})

test('spread is not a task setting', (t) => {
  expectErrors(t, file({}, {}, { spread: [] }), [`${T}.spread: unknown field ("spread" is a job or group setting; move it into the group block)`])
})

test('every rule problem is reported together, in file order', (t) => {
  const r = validateJob(file(
    { constraint: [rack('~', 'a')] },
    { affinity: [{ attribute: 'x', value: 'y', weight: 0 }], spread: [{ attribute: '${meta.rack}', target: [{ value: 'a', percent: 200 }] }] },
    { constraint: [rack('regexp', '*')] },
  ))
  t.false(r.ok)
  if (!r.ok) {
    t.deepEqual(r.errors.map((e) => e.field), [
      `${J}.constraint[0].operator`,
      `${G}.affinity[0].attribute`,
      `${G}.affinity[0].weight`,
      `${G}.spread[0].target[0].percent`,
      `${T}.constraint[0].value`,
    ])
  }
})
