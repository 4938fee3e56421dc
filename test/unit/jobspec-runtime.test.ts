// Job files: the allocation runtime blocks (checks, check_restart, ...), validated with field paths.
import test, { type ExecutionContext } from 'ava'
import { formatErrors, validateJob } from '../../src/jobspec/index.ts'
import type { JobSpec } from '../../src/structs/index.ts'

type Json = Record<string, unknown>

/** A job "web" with group "fe" (port "http") and tasks; each task is a docker task publishing "http" unless given. */
function file(tasks: Record<string, Json>, groupExtra: Json = {}): Json {
  const full: Record<string, Json> = {}
  for (const [name, extra] of Object.entries(tasks)) {
    full[name] = { driver: 'docker', config: { image: 'busybox', ports: ['http'] }, ...extra }
  }
  return { job: { web: { group: { fe: { network: { port: { http: { to: 80 } } }, ...groupExtra, task: full } } } } }
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

const T = 'job.web.group.fe.task'

// --- Health checks -------------------------------------------------------------------

test('checks are normalised with their defaults; no checks, no fields', (t) => {
  const spec = specOf(file({
    a: {
      check: [
        { type: 'http', port: 'http' },
        { type: 'tcp', port: 'http', interval: '5s', timeout: '1s', retries: 1, start_period: '10s' },
        { type: 'command', command: 'pg_isready', args: ['-q'] },
        { type: 'http', port: 'http', path: '/health', expected_status: 204 },
      ],
      check_restart: { limit: 2, grace: '10s' },
    },
    b: {},
  }))
  const [a, b] = spec.groups[0]!.tasks
  t.deepEqual(a!.checks, [
    { type: 'http', port: 'http', path: '/', intervalMs: 10_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0 },
    { type: 'tcp', port: 'http', intervalMs: 5_000, timeoutMs: 1_000, retries: 1, startPeriodMs: 10_000 },
    { type: 'command', command: 'pg_isready', args: ['-q'], intervalMs: 10_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0 },
    { type: 'http', port: 'http', path: '/health', expectedStatus: 204, intervalMs: 10_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0 },
  ])
  t.deepEqual(a!.checkRestart, { limit: 2, graceMs: 10_000 })
  t.false('checks' in b!)
  t.false('checkRestart' in b!)
  t.deepEqual(specOf(file({ a: { check: [{ type: 'tcp', port: 'http' }], check_restart: {} } })).groups[0]!.tasks[0]!.checkRestart, { limit: 3, graceMs: 1_000 })
})

test('check problems are all reported with their field paths', (t) => {
  expectErrors(t, file({
    a: {
      check: [
        { type: 'http' },
        { type: 'tcp', port: 'admin', path: '/x' },
        { type: 'command', port: 'http' },
        { type: 'grpc', port: 'http' },
        { port: 'http', interval: 'soon', retries: 0, expected_status: 99 },
        { type: 'http', port: 'http', path: 'health', expected_status: 700, name: 'x' },
        'http',
      ],
    },
  }), [
    `${T}.a.check[0].port: is required`,
    `${T}.a.check[1].port: unknown port label "admin": group "fe" declares "http"`,
    `${T}.a.check[1].path: only applies to http checks (this is a tcp check)`,
    `${T}.a.check[2].port: only applies to http and tcp checks (this is a command check)`,
    `${T}.a.check[2].command: is required`,
    `${T}.a.check[3].type: must be one of "http", "tcp", "command" (got "grpc")`,
    `${T}.a.check[4].type: is required (one of "http", "tcp", "command")`,
    `${T}.a.check[4].interval: must be a duration string like "5s" or "2m" with units ms, s, m, h (got "soon")`,
    `${T}.a.check[4].retries: must be an integer ≥ 1 (got 0)`,
    `${T}.a.check[5].name: unknown field (checks have no name in Shoal; leave it out)`,
    `${T}.a.check[5].path: must start with "/" (got "health")`,
    `${T}.a.check[5].expected_status: must be an integer between 100 and 599 (got 700)`,
    `${T}.a.check[6]: must be an object (got "http")`,
  ])
})

test('check_restart needs checks; a docker check port must be published', (t) => {
  expectErrors(t, file({ a: { check_restart: { limit: 0, grace: 'x', lmit: 1 } } }), [
    `${T}.a.check_restart.lmit: unknown field (did you mean "limit"?)`,
    `${T}.a.check_restart: needs at least one check in the task's "check" block`,
    `${T}.a.check_restart.limit: must be an integer ≥ 1 (got 0)`,
    `${T}.a.check_restart.grace: must be a duration string like "5s" or "2m" with units ms, s, m, h (got "x")`,
  ])
  expectErrors(t, file({ a: { config: { image: 'busybox' }, check: [{ type: 'tcp', port: 'http' }] } }), [
    `${T}.a.check[0].port: port "http" is not published by a docker task of the group; add it to config.ports`,
  ])
  // Published by a sibling docker task: fine (the group shares one network namespace).
  specOf(file({ a: { config: { image: 'busybox' }, check: [{ type: 'tcp', port: 'http' }] }, b: {} }))
})

// --- Task ordering ---------------------------------------------------------------------

const exec = (extra: Json = {}): Json => ({ driver: 'exec', config: { command: '/bin/true' }, ...extra })

test('lifecycle, depends_on and essential are normalised; absent when not given', (t) => {
  const spec = specOf(file({
    init: exec({ lifecycle: { hook: 'prestart' } }),
    side: exec({ lifecycle: { hook: 'poststart', sidecar: true } }),
    db: exec({ check: [{ type: 'tcp', port: 'http' }] }),
    app: exec({ depends_on: [{ task: 'db', condition: 'HEALTHY' }, { task: 'init' }], essential: true }),
    job: exec({ essential: false }),
  }))
  const [init, side, db, app, job] = spec.groups[0]!.tasks
  t.deepEqual(init!.lifecycle, { hook: 'prestart', sidecar: false })
  t.deepEqual(side!.lifecycle, { hook: 'poststart', sidecar: true })
  t.false('lifecycle' in db! || 'dependsOn' in db! || 'essential' in db!)
  t.deepEqual(app!.dependsOn, [{ task: 'db', condition: 'HEALTHY' }, { task: 'init', condition: 'START' }])
  t.false('essential' in app!, 'true is the default')
  t.is(job!.essential, false)
})

test('depends_on problems name the field: unknown and repeated tasks, self, conditions that can never be met', (t) => {
  expectErrors(t, file({
    db: exec(),
    app: exec({ depends_on: [{ task: 'dbb' }, { task: 'app' }, { task: 'db', condition: 'HEALTHY' }, { task: 'db', condition: 'SUCCESS' }, { task: 'db', condition: 'READY' }] }),
    x: exec({ depends_on: { task: 'db' }, essential: 'false', lifecycle: { hook: 'poststop', sidecar: true } }),
    y: exec({ lifecycle: { hook: 'after' } }),
  }), [
    `${T}.app.depends_on[4].condition: must be one of "START", "COMPLETE", "SUCCESS", "HEALTHY" (got "READY")`,
    `${T}.x.lifecycle.sidecar: only prestart and poststart tasks can be sidecars`,
    `${T}.x.depends_on: must be an array of blocks, like [{"task": "db", "condition": "HEALTHY"}] (got an object)`,
    `${T}.x.essential: must be true or false (got "false"; leave out the quotes: false)`,
    `${T}.y.lifecycle.hook: must be one of "prestart", "poststart", "poststop" (got "after")`,
    `${T}.app.depends_on[0].task: unknown task "dbb" (did you mean "db"?): group "fe" has tasks "db", "app", "x", "y"`,
    `${T}.app.depends_on[1].task: a task cannot depend on itself`,
    `${T}.app.depends_on[2].condition: task "db" has no check, so it never becomes healthy; add a "check" block to it`,
    `${T}.app.depends_on[3].task: task "db" is listed more than once`,
  ])
  expectErrors(t, file({ db: exec(), app: exec({ depends_on: [{ task: 'db', condition: 'COMPLETE' }] }) }), [
    `${T}.app.depends_on[0].condition: task "db" is essential: its exit stops the group, so no task can wait for it to complete; set "essential": false on it`,
  ])
  specOf(file({ db: exec({ essential: false }), app: exec({ depends_on: [{ task: 'db', condition: 'COMPLETE' }] }) }))
  specOf(file({ m: exec({ lifecycle: { hook: 'prestart' } }), app: exec({ depends_on: [{ task: 'm', condition: 'SUCCESS' }] }) }))
})

test('cycles are errors, through depends_on and through the waits lifecycle hooks imply', (t) => {
  expectErrors(t, file({
    a: exec({ depends_on: [{ task: 'b' }] }),
    b: exec({ depends_on: [{ task: 'c' }] }),
    c: exec({ depends_on: [{ task: 'a' }] }),
  }), [`${T}.a.depends_on[0]: forms a cycle: a → b → c → a`])
  expectErrors(t, file({
    main: exec(),
    init: exec({ lifecycle: { hook: 'prestart' }, depends_on: [{ task: 'main' }] }),
  }), [`${T}.init.depends_on[0]: forms a cycle: main → init → main ("→" is "waits for"; main tasks wait for prestart tasks, poststart tasks for main tasks, poststop tasks for all others)`])
  expectErrors(t, file({ init: exec({ lifecycle: { hook: 'prestart' } }) }), [
    'job.web.group.fe.task: needs at least one main task (a task without a lifecycle block)',
  ])
})

// --- Resources and env -----------------------------------------------------------------

test('volumes, cpu_hard_limit, memory_max and env_from_var are normalised; absent when not given', (t) => {
  const spec = specOf(file({
    a: {
      config: { image: 'busybox', ports: ['http'], volumes: ['/srv/data:/data', '/etc/app:/etc/app:ro', '/x:/y:rw'], cpu_hard_limit: true },
      resources: { cpu: 200, memory: 64, memory_max: 128 },
      env: { A: '1' },
      env_from_var: { DB_PASSWORD: 'app/db/password' },
    },
    b: exec({ config: { command: '/bin/true', cpu_hard_limit: true } }),
    c: {},
  }))
  const [a, b, c] = spec.groups[0]!.tasks
  t.deepEqual(a!.config, {
    image: 'busybox', args: [], ports: ['http'], cpuHardLimit: true,
    volumes: [
      { hostPath: '/srv/data', containerPath: '/data', readOnly: false },
      { hostPath: '/etc/app', containerPath: '/etc/app', readOnly: true },
      { hostPath: '/x', containerPath: '/y', readOnly: false },
    ],
  })
  t.deepEqual(a!.resources, { cpu: 200, memoryMB: 64, memoryMaxMB: 128 })
  t.deepEqual(a!.envFromVar, { DB_PASSWORD: 'app/db/password' })
  t.deepEqual(b!.config, { command: '/bin/true', args: [], cpuHardLimit: true })
  t.deepEqual(c!.config, { image: 'busybox', args: [], ports: ['http'] })
  t.deepEqual(c!.resources, { cpu: 100, memoryMB: 300 })
  t.false('envFromVar' in c!)
  t.false('cpuHardLimit' in specOf(file({ a: { config: { image: 'busybox', ports: ['http'], cpu_hard_limit: false } } })).groups[0]!.tasks[0]!.config)
})

test('volume, memory_max and env_from_var problems name the field', (t) => {
  expectErrors(t, file({
    a: {
      config: { image: 'busybox', ports: ['http'], volumes: ['data:/data', '/a:b', '/a:/b:rx', '/a', '/c:/b', '/d:/b', 7], cpu_hard_limit: 'yes' },
      resources: { memory: 64, memory_max: 32 },
      env: { SAME: 'x' },
      env_from_var: { SAME: 'app/x', BAD: 'no//path', NUM: 3 },
    },
    b: exec({ config: { command: '/bin/true', volumes: ['/a:/b'] } }),
  }), [
    `${T}.a.config.volumes[0]: host path must be absolute (got "data")`,
    `${T}.a.config.volumes[1]: container path must be absolute (got "b")`,
    `${T}.a.config.volumes[2]: mode must be "ro" or "rw" (got "rx")`,
    `${T}.a.config.volumes[3]: must be "HOST_PATH:CONTAINER_PATH" with an optional ":ro" or ":rw", like "/srv/data:/data" or "/etc/app:/etc/app:ro" (got "/a")`,
    `${T}.a.config.volumes[5]: container path "/b" is mounted more than once`,
    `${T}.a.config.volumes[6]: must be a string like "/srv/data:/data" or "/etc/app:/etc/app:ro" (got 7)`,
    `${T}.a.config.cpu_hard_limit: must be true or false (got "yes")`,
    `${T}.a.resources.memory_max: must be at least "memory" (64 MB): it is the hard limit above the reservation (got 32)`,
    `${T}.a.env_from_var.SAME: "SAME" is also set in "env"; set it in one place`,
    `${T}.a.env_from_var.BAD: variable path "no//path" must be segments of letters, digits, "_", "-", ".", "@" separated by single "/"`,
    `${T}.a.env_from_var.NUM: must be the path of a variable, a string like "app/db/password" (got 3)`,
    `${T}.b.config.volumes: unknown field (exec tasks run on the host and see its files; "volumes" is a docker driver option)`,
  ])
})

// --- Log rotation ------------------------------------------------------------------------

test('logs: max_files and max_file_size_mb with their defaults; absent when not given', (t) => {
  const spec = specOf(file({ a: { logs: { max_files: 3, max_file_size_mb: 1 } }, b: { logs: {} }, c: { logs: { max_files: 2 } }, d: {} }))
  const [a, b, c, d] = spec.groups[0]!.tasks
  t.deepEqual(a!.logs, { maxFiles: 3, maxFileSizeMB: 1 })
  t.deepEqual(b!.logs, { maxFiles: 10, maxFileSizeMB: 10 })
  t.deepEqual(c!.logs, { maxFiles: 2, maxFileSizeMB: 10 })
  t.false('logs' in d!)
})

test('logs problems name the field', (t) => {
  expectErrors(t, file({
    a: { logs: { max_files: 0, max_file_size_mb: 1.5 } },
    b: { logs: { max_file_size: 10, max_files: '3' } },
    c: { logs: 'small' },
    d: { logs: { max_files: 1001, max_file_size_mb: 200_000 } },
  }), [
    `${T}.a.logs.max_files: must be an integer between 1 and 1000 (got 0)`,
    `${T}.a.logs.max_file_size_mb: must be an integer between 1 and 102400 (got 1.5)`,
    `${T}.b.logs.max_file_size: unknown field (did you mean "max_file_size_mb"? the size is in MB)`,
    `${T}.b.logs.max_files: must be an integer between 1 and 1000 (got "3")`,
    `${T}.c.logs: must be an object like {"max_files": 10, "max_file_size_mb": 10} (got "small")`,
    `${T}.d.logs.max_files: must be an integer between 1 and 1000 (got 1001)`,
    `${T}.d.logs.max_file_size_mb: must be an integer between 1 and 102400 (got 200000)`,
  ])
})
