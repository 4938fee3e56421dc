import test from 'ava'
import { formatErrors, parseJobText, type FieldError, type SpecResult } from '../../src/jobspec/index.ts'

const MINIMAL = '{"job": {"j": {"group": {"g": {"task": {"t": {"driver": "exec", "config": {"command": "/bin/true"}}}}}}}}'

function errorsOf(r: SpecResult): FieldError[] {
  if (r.ok) throw new Error(`expected errors, got a spec: ${JSON.stringify(r.spec)}`)
  return r.errors
}

function onlyError(r: SpecResult): FieldError {
  const errors = errorsOf(r)
  if (errors.length !== 1) throw new Error(`expected one error, got:\n${formatErrors(errors)}`)
  return errors[0]
}

test('a valid text parses', (t) => {
  const r = parseJobText(MINIMAL)
  t.true(r.ok)
  if (r.ok) t.is(r.spec.id, 'j')
})

test('invalid JSON reports line and column from the position Node gives', (t) => {
  const text = '{\n  "job": {\n    "web": {"type": "service",}\n  }\n}'
  // The offending "}" is on line 3, just after `    "web": {"type": "service",`.
  t.deepEqual(onlyError(parseJobText(text)), {
    field: 'file',
    message: 'invalid JSON at line 3, column 31: Expected double-quoted property name',
  })
})

test('invalid JSON reports line and column for an unexpected token Node gives no position for', (t) => {
  const text = '{\n  "job": {\n    "web": nope\n  }\n}'
  t.deepEqual(onlyError(parseJobText(text)), {
    field: 'file',
    // "n" starts a literal; the "o" is where it stops being "null".
    message: "invalid JSON at line 3, column 13: Unexpected token 'o'",
  })
  const e = onlyError(parseJobText('{"job": {"web": {"group": {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": {"count": tru}}}}}'))
  t.is(e.message, "invalid JSON at line 1, column 89: Unexpected token '}'")
})

test('a missing comma between fields is located', (t) => {
  const text = '{"job": {\n  "web": {\n    "type": "batch"\n    "priority": 10\n  }\n}}'
  t.deepEqual(onlyError(parseJobText(text)), {
    field: 'file',
    // JSON can only tell at the next key, the start of line 4.
    message: `invalid JSON at line 4, column 5: Expected ',' or '}' after property value`,
  })
})

test('truncated JSON is located at the end of the text', (t) => {
  const text = '{"job": {\n  "web": {"type": "batch"'
  const e = onlyError(parseJobText(text))
  t.is(e.field, 'file')
  t.regex(e.message, /^invalid JSON at line 2, column 26: /)
})

test('text after the JSON value is an error', (t) => {
  const e = onlyError(parseJobText(`${MINIMAL}\n\n  x`))
  t.is(e.message, 'invalid JSON at line 3, column 3: Unexpected non-whitespace character after JSON')
})

test('single quotes, comments and control characters are located', (t) => {
  t.regex(onlyError(parseJobText("{'job': {}}")).message, /^invalid JSON at line 1, column 2: /)
  t.regex(onlyError(parseJobText('{\n// comment\n"job": {}}')).message, /^invalid JSON at line 2, column 1: /)
  t.regex(onlyError(parseJobText('{"job": "a\tb"}')).message, /^invalid JSON at line 1, column 11: /)
})

test('CRLF line endings count as one line break', (t) => {
  const e = onlyError(parseJobText('{\r\n"job": {\r\n  "web": ]\r\n}}'))
  t.is(e.message.slice(0, e.message.indexOf(':')), 'invalid JSON at line 3, column 10')
})

test('an empty or blank file has a clear error', (t) => {
  for (const text of ['', '   \n\t', '\uFEFF']) {
    t.deepEqual(onlyError(parseJobText(text)), {
      field: 'file',
      message: 'is empty: expected a JSON object like {"job": {"web": {...}}}',
    })
  }
})

test('a leading byte order mark is ignored', (t) => {
  t.true(parseJobText(`\uFEFF${MINIMAL}`).ok)
})

test('a key repeated in one object is an error, with where it repeats', (t) => {
  const text = [
    '{"job": {"web": {"group": {',
    '  "g": {"task": {"t": {"driver": "exec", "config": {"command": "/bin/true"}}}},',
    '  "g": {"task": {"t": {"driver": "exec", "config": {"command": "/bin/true"}}}}',
    '}}}}',
  ].join('\n')
  t.deepEqual(errorsOf(parseJobText(text)), [
    { field: 'job.web.group.g', message: 'duplicate key at line 3, column 3: each key may appear only once' },
  ])
})

test('duplicate keys are reported alongside validation errors', (t) => {
  const text = '{"job": {"web": {"priority": 5, "priority": 500, "group": {}}}}'
  t.deepEqual(errorsOf(parseJobText(text)), [
    { field: 'job.web.priority', message: 'duplicate key at line 1, column 33: each key may appear only once' },
    { field: 'job.web.priority', message: 'must be an integer between 1 and 100 (got 500)' },
    { field: 'job.web.group', message: 'must define at least one group, like {"frontend": {"task": {...}}}' },
  ])
})

test('two "job" keys at the top are a duplicate', (t) => {
  const text = `{"job": {"a": {}},\n "job": ${MINIMAL.slice(8, -1)}}`
  t.deepEqual(errorsOf(parseJobText(text)), [
    { field: 'job', message: 'duplicate key at line 2, column 2: each key may appear only once' },
  ])
})

test('escaped keys are compared by their value', (t) => {
  const e = errorsOf(parseJobText('{"job": {"j": {"type": "batch", "t\\u0079pe": "batch"}}}'))[0]
  t.is(e.field, 'job.j.type')
  t.regex(e.message, /^duplicate key/)
})

test('formatErrors writes one line per error', (t) => {
  const r = parseJobText('{"job": {"web": {"priority": 0, "group": {"g": {"count": -1, "task": {}}}}}}')
  t.is(
    formatErrors(errorsOf(r)),
    [
      'job.web.priority: must be an integer between 1 and 100 (got 0)',
      'job.web.group.g.count: must be an integer ≥ 0 (got -1)',
      'job.web.group.g.task: must define at least one task, like {"server": {"driver": "docker", "config": {...}}}',
    ].join('\n'),
  )
  t.is(formatErrors([]), '')
})
