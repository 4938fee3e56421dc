import test, { type ExecutionContext } from 'ava'
import { defaultReschedulePolicy, type JobSpec } from '../../src/structs/index.ts'
import {
  formatErrors,
  parseJobText,
  validateJob,
  type FieldError,
  type SpecResult,
} from '../../src/jobspec/index.ts'

// The example job file from the design notes.
const EXAMPLE_TEXT = `{"job": {"web": {"type": "service",
  "group": {"frontend": {"count": 2,
    "network": {"port": {"http": {"to": 80}}},
    "restart": {"attempts": 3, "interval": "5m", "delay": "2s"},
    "task": {"httpd": {"driver": "docker",
      "config": {"image": "shoal-test/busybox:latest", "command": "/bin/httpd", "args": ["-f", "-p", "80", "-h", "/www"], "ports": ["http"]},
      "env": {"GREETING": "hi"},
      "resources": {"cpu": 100, "memory": 32}}}}}}}}`

const EXAMPLE_SPEC: JobSpec = {
  id: 'web',
  type: 'service',
  priority: 50,
  groups: [
    {
      name: 'frontend',
      count: 2,
      ports: [{ label: 'http', to: 80 }],
      restart: { attempts: 3, intervalMs: 300_000, delayMs: 2_000, mode: 'fail' },
      reschedule: defaultReschedulePolicy('service'),
      tasks: [
        {
          name: 'httpd',
          driver: 'docker',
          config: {
            image: 'shoal-test/busybox:latest',
            command: '/bin/httpd',
            args: ['-f', '-p', '80', '-h', '/www'],
            ports: ['http'],
          },
          env: { GREETING: 'hi' },
          resources: { cpu: 100, memoryMB: 32 },
          killTimeoutMs: 5_000,
        },
      ],
    },
  ],
}

type Json = Record<string, unknown>

/** A fresh copy of the example, as a plain object to tweak. */
function example(): Json {
  return JSON.parse(EXAMPLE_TEXT) as Json
}

/** Shortcuts into a fresh example: its job body, group and task objects. */
function parts() {
  const root = example()
  const job = (root.job as Json).web as Json
  const group = (job.group as Json).frontend as Json
  const task = (group.task as Json).httpd as Json
  const config = task.config as Json
  return { root, job, group, task, config }
}

/** A job with one exec task and nothing else set. */
function minimal(): Json {
  return { job: { j: { group: { g: { task: { t: { driver: 'exec', config: { command: '/bin/true' } } } } } } } }
}

function errorsOf(r: SpecResult): FieldError[] {
  if (r.ok) throw new Error(`expected errors, got a spec: ${JSON.stringify(r.spec)}`)
  return r.errors
}

/** Validates, expecting exactly the errors given as "field: message" lines. */
function expectErrors(t: ExecutionContext, raw: unknown, expected: string[]) {
  t.deepEqual(formatErrors(errorsOf(validateJob(raw))).split('\n'), expected)
}

function spec(r: SpecResult): JobSpec {
  if (!r.ok) throw new Error(`expected a spec, got:\n${formatErrors(r.errors)}`)
  return r.spec
}

const G = 'job.web.group.frontend'
const T = `${G}.task.httpd`

// --- Valid files -------------------------------------------------------------

test('the example parses into the expected JobSpec', (t) => {
  t.deepEqual(spec(parseJobText(EXAMPLE_TEXT)), EXAMPLE_SPEC)
})

test('validateJob takes the parsed object directly', (t) => {
  t.deepEqual(validateJob(example()), { ok: true, spec: EXAMPLE_SPEC })
})

test('validateJob does not modify its input', (t) => {
  const raw = example()
  const before = JSON.stringify(raw)
  validateJob(raw)
  t.is(JSON.stringify(raw), before)
})

test('defaults are applied to a minimal job', (t) => {
  t.deepEqual(spec(validateJob(minimal())), {
    id: 'j',
    type: 'service',
    priority: 50,
    groups: [
      {
        name: 'g',
        count: 1,
        ports: [],
        restart: { attempts: 2, intervalMs: 30 * 60_000, delayMs: 15_000, mode: 'fail' },
        reschedule: defaultReschedulePolicy('service'),
        tasks: [
          {
            name: 't',
            driver: 'exec',
            config: { command: '/bin/true', args: [] },
            env: {},
            resources: { cpu: 100, memoryMB: 300 },
            killTimeoutMs: 5_000,
          },
        ],
      },
    ],
  })
})

test('docker defaults: no command, empty args and ports', (t) => {
  const raw = { job: { j: { group: { g: { task: { t: { driver: 'docker', config: { image: 'busybox' } } } } } } } }
  const task = spec(validateJob(raw)).groups[0].tasks[0]
  t.deepEqual(task.config, { image: 'busybox', args: [], ports: [] })
  t.false('command' in task.config)
})

test('restart defaults depend on the job type', (t) => {
  const withType = (type: string) => {
    const raw = minimal()
    ;((raw.job as Json).j as Json).type = type
    return spec(validateJob(raw)).groups[0].restart
  }
  t.deepEqual(withType('service'), { attempts: 2, intervalMs: 1_800_000, delayMs: 15_000, mode: 'fail' })
  t.deepEqual(withType('system'), { attempts: 2, intervalMs: 1_800_000, delayMs: 15_000, mode: 'fail' })
  t.deepEqual(withType('batch'), { attempts: 3, intervalMs: 86_400_000, delayMs: 15_000, mode: 'fail' })
})

test('a partial restart block is completed from the defaults', (t) => {
  const raw = minimal()
  const j = (raw.job as Json).j as Json
  j.type = 'batch'
  ;((j.group as Json).g as Json).restart = { delay: '1s', mode: 'delay' }
  t.deepEqual(spec(validateJob(raw)).groups[0].restart, { attempts: 3, intervalMs: 86_400_000, delayMs: 1_000, mode: 'delay' })
})

test('explicit values replace the defaults', (t) => {
  const raw = {
    job: {
      'api.v2': {
        type: 'batch',
        priority: 100,
        group: {
          g: {
            count: 0,
            network: { port: { a: {}, b: { static: 8080 }, c: { to: 9000, static: 9001 } } },
            restart: { attempts: 0, interval: '1h30m', delay: '500ms', mode: 'delay' },
            task: {
              t: {
                driver: 'exec',
                config: { command: '/bin/sh', args: ['-c', 'echo hi'] },
                env: { A: '', B: 'x=y' },
                resources: { cpu: 1, memory: 1 },
                kill_timeout: '1.5s',
              },
            },
          },
        },
      },
    },
  }
  t.deepEqual(spec(validateJob(raw)), {
    id: 'api.v2',
    type: 'batch',
    priority: 100,
    groups: [
      {
        name: 'g',
        count: 0,
        ports: [{ label: 'a' }, { label: 'b', static: 8080 }, { label: 'c', to: 9000, static: 9001 }],
        restart: { attempts: 0, intervalMs: 5_400_000, delayMs: 500, mode: 'delay' },
        reschedule: defaultReschedulePolicy('batch'),
        tasks: [
          {
            name: 't',
            driver: 'exec',
            config: { command: '/bin/sh', args: ['-c', 'echo hi'] },
            env: { A: '', B: 'x=y' },
            resources: { cpu: 1, memoryMB: 1 },
            killTimeoutMs: 1_500,
          },
        ],
      },
    ],
  })
})

test('groups, tasks and ports keep the order of the file', (t) => {
  const raw = minimal()
  const groups = ((raw.job as Json).j as Json).group as Json
  const task = { driver: 'exec', config: { command: '/bin/true' } }
  groups.b = { network: { port: { z: {}, y: {} } }, task: { second: task, first: task } }
  const s = spec(validateJob(raw))
  t.deepEqual(s.groups.map((g) => g.name), ['g', 'b'])
  t.deepEqual(s.groups[1].tasks.map((x) => x.name), ['second', 'first'])
  t.deepEqual(s.groups[1].ports.map((p) => p.label), ['z', 'y'])
})

test('keys named like Object.prototype members are ordinary names', (t) => {
  const raw = JSON.parse(
    '{"job": {"constructor": {"group": {"toString": {"task": {"__proto__": {"driver": "exec", "config": {"command": "x"}, "env": {"__proto__": "p", "hasOwnProperty": "h"}}}}}}}}',
  ) as unknown
  const s = spec(validateJob(raw))
  t.is(s.id, 'constructor')
  t.is(s.groups[0].name, 'toString')
  const task = s.groups[0].tasks[0]
  t.is(task.name, '__proto__')
  t.deepEqual(Object.entries(task.env), [['__proto__', 'p'], ['hasOwnProperty', 'h']])
  // And a missing field is never read from the prototype.
  t.is(s.priority, 50)
})

// --- The top level -----------------------------------------------------------

test('the file must be an object', (t) => {
  for (const [raw, got] of [[[], 'an array'], [null, 'null'], ['job', '"job"'], [3, '3']] as const) {
    expectErrors(t, raw, [`file: must be a JSON object with a "job" key, like {"job": {"web": {...}}} (got ${got})`])
  }
})

test('a missing "job" is an error', (t) => {
  expectErrors(t, {}, ['job: is required: the file must define one job, like {"job": {"web": {...}}}'])
  expectErrors(t, { jobs: {} }, [
    'jobs: unknown field (did you mean "job"?)',
    'job: is required: the file must define one job, like {"job": {"web": {...}}}',
  ])
})

test('"job" must be an object keyed by job id', (t) => {
  expectErrors(t, { job: [] }, ['job: must be an object keyed by job id, like {"job": {"web": {...}}} (got an array)'])
  expectErrors(t, { job: 'web' }, ['job: must be an object keyed by job id, like {"job": {"web": {...}}} (got "web")'])
})

test('"job" must hold exactly one job', (t) => {
  expectErrors(t, { job: {} }, ['job: must define exactly one job, found none'])
  const raw = example()
  const jobs = raw.job as Json
  jobs.other = { ...((minimal().job as Json).j as Json), priority: 0 }
  expectErrors(t, raw, [
    'job: must define exactly one job, found 2 ("web", "other"); put each job in its own file',
    // The second job is still checked, so its problems show up too.
    'job.other.priority: must be an integer between 1 and 100 (got 0)',
  ])
})

// --- The job -----------------------------------------------------------------

test('the job body must be an object', (t) => {
  expectErrors(t, { job: { web: [] } }, ['job.web: must be an object (got an array)'])
  expectErrors(t, { job: { web: null } }, ['job.web: must be an object (got null)'])
})

test('job type must be known', (t) => {
  const { root, job } = parts()
  job.type = 'daemon'
  expectErrors(t, root, ['job.web.type: must be one of "service", "batch", "system" (got "daemon")'])
  job.type = 1
  expectErrors(t, root, ['job.web.type: must be one of "service", "batch", "system" (got 1)'])
})

test('priority must be an integer between 1 and 100', (t) => {
  const { root, job } = parts()
  for (const [value, got] of [[0, '0'], [101, '101'], [-5, '-5'], [50.5, '50.5'], ['50', '"50"'], [null, 'null']] as const) {
    job.priority = value
    expectErrors(t, root, [`job.web.priority: must be an integer between 1 and 100 (got ${got})`])
  }
  for (const ok of [1, 100]) {
    job.priority = ok
    t.is(spec(validateJob(root)).priority, ok)
  }
})

test('groups are required, as an object with at least one', (t) => {
  const { root, job } = parts()
  delete job.group
  expectErrors(t, root, ['job.web.group: is required: define at least one group, like {"frontend": {"task": {...}}}'])
  job.group = {}
  expectErrors(t, root, ['job.web.group: must define at least one group, like {"frontend": {"task": {...}}}'])
  job.group = [{ frontend: {} }]
  expectErrors(t, root, [
    'job.web.group: must be an object keyed by group name, like {"frontend": {"task": {...}}} (got an array)',
  ])
  job.group = { frontend: 'x' }
  expectErrors(t, root, [`${G}: must be an object (got "x")`])
})

// --- Names -------------------------------------------------------------------

test('job ids may use letters, digits, "_", "-" and "."', (t) => {
  const withId = (id: string) => ({ job: { [id]: (minimal().job as Json).j } })
  for (const id of ['web', 'Web_2', 'web-2', 'web.v2', 'a'.repeat(128)]) t.is(spec(validateJob(withId(id))).id, id)
  expectErrors(t, withId('my job'), ['job["my job"]: invalid job id "my job": use only letters, digits, "_", "-" and "."'])
  expectErrors(t, withId('web/2'), ['job["web/2"]: invalid job id "web/2": use only letters, digits, "_", "-" and "."'])
  expectErrors(t, withId(''), ['job[""]: job id must not be empty'])
  expectErrors(t, withId('..'), ['job...: invalid job id "..": must not be "." or ".."'])
  const long = 'a'.repeat(129)
  expectErrors(t, withId(long), [`job.${long}: job id is too long (129 characters; at most 128)`])
})

test('group, task and port names may use letters, digits, "_" and "-"', (t) => {
  const { root, job, group, task } = parts()
  ;(job.group as Json)['front.end'] = group
  delete (job.group as Json).frontend
  ;(group.task as Json)[''] = task
  delete (group.task as Json).httpd
  const ports = (group.network as Json).port as Json
  ports['my port'] = {}
  ports['x'.repeat(129)] = {}
  expectErrors(t, root, [
    'job.web.group.front.end: invalid group name "front.end": use only letters, digits, "_" and "-"',
    `job.web.group.front.end.network.port["my port"]: invalid port label name "my port": use only letters, digits, "_" and "-"`,
    `job.web.group.front.end.network.port.${'x'.repeat(129)}: port label name is too long (129 characters; at most 128)`,
    'job.web.group.front.end.task[""]: task name must not be empty',
  ])
})

// --- The group ---------------------------------------------------------------

test('count must be an integer ≥ 0', (t) => {
  const { root, group } = parts()
  for (const [value, got] of [[-1, '-1'], [1.5, '1.5'], ['2', '"2"'], [true, 'true'], [null, 'null'], [[], 'an array']] as const) {
    group.count = value
    expectErrors(t, root, [`${G}.count: must be an integer ≥ 0 (got ${got})`])
  }
  group.count = 0
  t.is(spec(validateJob(root)).groups[0].count, 0)
  group.count = 1000
  t.is(spec(validateJob(root)).groups[0].count, 1000)
})

test('network and ports must be objects', (t) => {
  const { root, group } = parts()
  group.network = []
  expectErrors(t, root, [`${G}.network: must be an object (got an array)`])
  group.network = { port: ['http'] }
  expectErrors(t, root, [`${G}.network.port: must be an object keyed by port label, like {"http": {"to": 80}} (got an array)`])
  group.network = { port: { http: 80 } }
  expectErrors(t, root, [`${G}.network.port.http: must be an object like {"to": 80}, {"static": 8080} or {} (got 80)`])
  group.network = { mode: 'bridge', port: { http: { to: 80, host: 1 } } }
  expectErrors(t, root, [
    `${G}.network.mode: unknown field (expected one of "port")`,
    `${G}.network.port.http.host: unknown field (expected one of "to", "static", "protocol")`,
  ])
})

test('port numbers must be between 1 and 65535', (t) => {
  const { root, group } = parts()
  group.network = { port: { http: { to: 0, static: 65536 }, b: { to: '80' }, c: { static: 80.5 } } }
  expectErrors(t, root, [
    `${G}.network.port.http.to: must be an integer between 1 and 65535 (got 0)`,
    `${G}.network.port.http.static: must be an integer between 1 and 65535 (got 65536)`,
    `${G}.network.port.b.to: must be an integer between 1 and 65535 (got "80")`,
    `${G}.network.port.c.static: must be an integer between 1 and 65535 (got 80.5)`,
  ])
  group.network = { port: { http: { to: 65535, static: 1 } } }
  t.deepEqual(spec(validateJob(root)).groups[0].ports, [{ label: 'http', to: 65535, static: 1 }])
})

test('two ports of a group cannot share a static port', (t) => {
  const { root, group } = parts()
  group.network = { port: { http: { static: 8080 }, admin: { static: 8081 }, alt: { static: 8080, to: 80 } } }
  expectErrors(t, root, [`${G}.network.port.alt.static: host port 8080 is already taken by port "http" of this group`])
})

test('the same static port in two groups is allowed', (t) => {
  const raw = minimal()
  const groups = ((raw.job as Json).j as Json).group as Json
  const g = groups.g as Json
  g.network = { port: { p: { static: 8080 } } }
  groups.h = { ...g }
  t.true(validateJob(raw).ok)
})

test('restart values are checked', (t) => {
  const { root, group } = parts()
  group.restart = 'always'
  expectErrors(t, root, [`${G}.restart: must be an object (got "always")`])
  group.restart = { attempts: -1, interval: 300, delay: '2 s', mode: 'restart' }
  expectErrors(t, root, [
    `${G}.restart.attempts: must be an integer ≥ 0 (got -1)`,
    `${G}.restart.interval: must be a duration string like "5s" or "2m" (got 300)`,
    `${G}.restart.delay: must be a duration string like "5s" or "2m" with units ms, s, m, h (got "2 s")`,
    `${G}.restart.mode: must be one of "fail", "delay" (got "restart")`,
  ])
})

test('tasks are required, as an object with at least one', (t) => {
  const { root, group } = parts()
  delete group.task
  expectErrors(t, root, [`${G}.task: is required: define at least one task, like {"server": {"driver": "docker", "config": {...}}}`])
  group.task = {}
  expectErrors(t, root, [`${G}.task: must define at least one task, like {"server": {"driver": "docker", "config": {...}}}`])
  group.task = 'httpd'
  expectErrors(t, root, [
    `${G}.task: must be an object keyed by task name, like {"server": {"driver": "docker", "config": {...}}} (got "httpd")`,
  ])
  group.task = { httpd: [] }
  expectErrors(t, root, [`${T}: must be an object (got an array)`])
})

// --- The task ----------------------------------------------------------------

test('a task needs a known driver', (t) => {
  const { root, task } = parts()
  delete task.driver
  expectErrors(t, root, [`${T}.driver: is required (known drivers: "docker", "exec")`])
  task.driver = 'podman'
  expectErrors(t, root, [`${T}.driver: unknown driver "podman" (known drivers: "docker", "exec")`])
  task.driver = 'dokcer'
  expectErrors(t, root, [`${T}.driver: unknown driver "dokcer" (did you mean "docker"? known drivers: "docker", "exec")`])
  task.driver = 'Docker'
  expectErrors(t, root, [`${T}.driver: unknown driver "Docker" (did you mean "docker"? known drivers: "docker", "exec")`])
  task.driver = ['docker']
  expectErrors(t, root, [`${T}.driver: must be a string naming a driver (got an array; known drivers: "docker", "exec")`])
})

test('with an unknown driver the config is not checked against a driver', (t) => {
  const { root, task } = parts()
  task.driver = 'raw_exec'
  task.config = { anything: true }
  expectErrors(t, root, [`${T}.driver: unknown driver "raw_exec" (known drivers: "docker", "exec")`])
  task.config = 'x'
  expectErrors(t, root, [
    `${T}.driver: unknown driver "raw_exec" (known drivers: "docker", "exec")`,
    `${T}.config: must be an object (got "x")`,
  ])
})

test('docker config is required and must be an object', (t) => {
  const { root, task } = parts()
  delete task.config
  expectErrors(t, root, [`${T}.config: is required for the docker driver, like {"image": "busybox:1.36"}`])
  task.config = ['image']
  expectErrors(t, root, [`${T}.config: must be an object (got an array)`])
})

test('docker image must be a non-empty string', (t) => {
  const { root, config } = parts()
  delete config.image
  expectErrors(t, root, [`${T}.config.image: is required`])
  config.image = ''
  expectErrors(t, root, [`${T}.config.image: must not be empty`])
  config.image = '   '
  expectErrors(t, root, [`${T}.config.image: must not be empty`])
  config.image = 42
  expectErrors(t, root, [`${T}.config.image: must be a string (got 42)`])
  config.image = 'busybox latest'
  expectErrors(t, root, [`${T}.config.image: must not contain whitespace (got "busybox latest")`])
})

test('docker command, args and ports have the right types', (t) => {
  const { root, config } = parts()
  config.command = ''
  config.args = '-f'
  config.ports = 'http'
  expectErrors(t, root, [
    `${T}.config.command: must not be empty (leave it out to run the image's default command)`,
    `${T}.config.args: must be an array of strings (got "-f")`,
    `${T}.config.ports: must be an array of strings (got "http")`,
  ])
  config.command = ['/bin/httpd']
  config.args = ['-p', 80, null]
  config.ports = [1]
  expectErrors(t, root, [
    `${T}.config.command: must be a string (got an array)`,
    `${T}.config.args[1]: must be a string (got 80)`,
    `${T}.config.args[2]: must be a string (got null)`,
    `${T}.config.ports[0]: must be a string (got 1)`,
  ])
})

test('docker ports must name ports of the group', (t) => {
  const { root, group, config } = parts()
  config.ports = ['http', 'htp', 'admin']
  expectErrors(t, root, [
    `${T}.config.ports[1]: unknown port label "htp": group "frontend" declares "http" (did you mean "http"?)`,
    `${T}.config.ports[2]: unknown port label "admin": group "frontend" declares "http"`,
  ])
  delete group.network
  config.ports = ['http']
  expectErrors(t, root, [
    `${T}.config.ports[0]: unknown port label "http": group "frontend" declares no ports (add it under network.port)`,
  ])
  group.network = { port: { http: {} } }
  config.ports = ['http', 'http']
  expectErrors(t, root, [`${T}.config.ports[1]: port label "http" is listed more than once`])
})

test('a broken port block does not also make its label unknown', (t) => {
  const { root, group } = parts()
  group.network = { port: { http: { to: 'eighty' } } }
  expectErrors(t, root, [`${G}.network.port.http.to: must be an integer between 1 and 65535 (got "eighty")`])
  group.network = { port: 'http' }
  expectErrors(t, root, [
    `${G}.network.port: must be an object keyed by port label, like {"http": {"to": 80}} (got "http")`,
  ])
})

test('exec config needs a command', (t) => {
  const raw = minimal()
  const task = ((((raw.job as Json).j as Json).group as Json).g as Json).task as Json
  const t1 = task.t as Json
  const at = 'job.j.group.g.task.t'
  t1.config = { args: ['x'] }
  expectErrors(t, raw, [`${at}.config.command: is required`])
  t1.config = { command: '', args: [1] }
  expectErrors(t, raw, [`${at}.config.command: must not be empty`, `${at}.config.args[0]: must be a string (got 1)`])
  delete t1.config
  expectErrors(t, raw, [`${at}.config: is required for the exec driver, like {"command": "/bin/sleep", "args": ["60"]}`])
  t1.config = { command: '/bin/true', image: 'busybox', ports: ['http'] }
  expectErrors(t, raw, [
    `${at}.config.image: unknown field ("image" is a docker driver option; the exec driver runs a command on the host)`,
    `${at}.config.ports: unknown field (exec tasks find their ports in the environment; "ports" is a docker driver option)`,
  ])
})

test('env must be an object of strings', (t) => {
  const { root, task } = parts()
  task.env = ['A=1']
  expectErrors(t, root, [`${T}.env: must be an object of string values, like {"GREETING": "hi"} (got an array)`])
  task.env = { PORT: 8080, DEBUG: true, NOTHING: null, LIST: ['a'], OK: 'yes' }
  expectErrors(t, root, [
    `${T}.env.PORT: must be a string (got number 8080); quote it: "8080"`,
    `${T}.env.DEBUG: must be a string (got boolean true); quote it: "true"`,
    `${T}.env.NOTHING: must be a string (got null)`,
    `${T}.env.LIST: must be a string (got an array)`,
  ])
  task.env = { '': 'x', 'A=B': 'y', C: 'a\0b' }
  expectErrors(t, root, [
    `${T}.env[""]: environment variable name must not be empty`,
    `${T}.env["A=B"]: invalid environment variable name "A=B": must not contain "=" or NUL`,
    `${T}.env.C: must not contain a NUL character`,
  ])
})

test('resources must be positive integers', (t) => {
  const { root, task } = parts()
  task.resources = { cpu: 0, memory: 1.5 }
  expectErrors(t, root, [
    `${T}.resources.cpu: must be an integer ≥ 1 (got 0)`,
    `${T}.resources.memory: must be an integer ≥ 1 (got 1.5)`,
  ])
  task.resources = { cpu: '100', memory: -32 }
  expectErrors(t, root, [
    `${T}.resources.cpu: must be an integer ≥ 1 (got "100")`,
    `${T}.resources.memory: must be an integer ≥ 1 (got -32)`,
  ])
  task.resources = 100
  expectErrors(t, root, [`${T}.resources: must be an object (got 100)`])
  task.resources = { memory: 64 }
  t.deepEqual(spec(validateJob(root)).groups[0].tasks[0].resources, { cpu: 100, memoryMB: 64 })
  task.resources = { cpu: 500 }
  t.deepEqual(spec(validateJob(root)).groups[0].tasks[0].resources, { cpu: 500, memoryMB: 300 })
})

test('kill_timeout must be a duration string', (t) => {
  const { root, task } = parts()
  for (const [value, got, units] of [[5, '5', ''], ['5', '"5"', ' with units ms, s, m, h'], ['-1s', '"-1s"', ' with units ms, s, m, h'], [null, 'null', '']] as const) {
    task.kill_timeout = value
    expectErrors(t, root, [`${T}.kill_timeout: must be a duration string like "5s" or "2m"${units} (got ${got})`])
  }
  task.kill_timeout = '1m'
  t.is(spec(validateJob(root)).groups[0].tasks[0].killTimeoutMs, 60_000)
})

// --- Unknown fields ----------------------------------------------------------

test('unknown fields are errors, with the likely intended name', (t) => {
  const { root, job, group, task, config } = parts()
  job.prority = 10
  group.cuont = 3
  group.restart = { attempts: 1, intervall: '1m', Mode: 'fail' }
  task.kill_timout = '1s'
  task.envs = {}
  config.arg = []
  config.imgae = 'x'
  ;(task.resources as Json).memoryMB = 10
  ;((group.network as Json).port as Json).http = { To: 80 }
  expectErrors(t, root, [
    'job.web.prority: unknown field (did you mean "priority"?)',
    `${G}.cuont: unknown field (did you mean "count"?)`,
    `${G}.network.port.http.To: unknown field (did you mean "to"?)`,
    `${G}.restart.intervall: unknown field (did you mean "interval"?)`,
    `${G}.restart.Mode: unknown field (did you mean "mode"?)`,
    `${T}.kill_timout: unknown field (did you mean "kill_timeout"?)`,
    `${T}.envs: unknown field (did you mean "env"?)`,
    `${T}.config.arg: unknown field (did you mean "args"?)`,
    `${T}.config.imgae: unknown field (did you mean "image"?)`,
    `${T}.resources.memoryMB: unknown field (did you mean "memory"?)`,
  ])
})

test('unknown fields with nothing close list what is allowed', (t) => {
  const { root, job, task } = parts()
  job.datacenters = ['dc1']
  task.vault = {}
  expectErrors(t, root, [
    'job.web.datacenters: unknown field (expected one of "type", "priority", "reschedule", "update", "constraint", "affinity", "spread", "group")',
    `${T}.vault: unknown field (expected one of "driver", "config", "env", "resources", "kill_timeout", "constraint", "affinity", "check", "check_restart", "lifecycle", "depends_on", "essential", "env_from_var", "service", "upstreams", "logs")`,
  ])
})

test('fields at the wrong level say where they belong', (t) => {
  const { root, job, group, task } = parts()
  job.count = 2
  job.driver = 'docker'
  group.resources = {}
  group.ports = ['http']
  task.image = 'busybox'
  task.memory = 64
  task.restart = {}
  expectErrors(t, root, [
    'job.web.count: unknown field ("count" is a group setting; move it into a group block)',
    'job.web.driver: unknown field ("driver" is a task setting; move it into a task block)',
    `${G}.resources: unknown field ("resources" is a task setting; move it into a task block)`,
    `${G}.ports: unknown field (ports are declared under network.port, like {"network": {"port": {"http": {"to": 80}}}})`,
    `${T}.image: unknown field (did you mean "config.image"? driver options go in config)`,
    `${T}.memory: unknown field (did you mean "resources.memory"?)`,
    `${T}.restart: unknown field (Shoal takes the restart policy at the group level; move it into the group block)`,
  ])
})

test('unknown top-level keys are errors', (t) => {
  const raw = { ...example(), Job: {}, version: 1 }
  expectErrors(t, raw, [
    'Job: unknown field (did you mean "job"?)',
    'version: unknown field (expected one of "job")',
  ])
})

// --- Many problems at once ---------------------------------------------------

test('every problem in the file is reported together', (t) => {
  const text = `{"job": {"web": {"type": "cron", "priority": 0,
  "group": {
    "frontend": {"count": -1,
      "network": {"port": {"http": {"to": 80, "static": 70000}}},
      "restart": {"attempts": 1.5, "interval": "5 minutes"},
      "task": {
        "httpd": {"driver": "docker",
          "config": {"image": "", "ports": ["https"]},
          "env": {"PORT": 80},
          "resources": {"cpu": 0},
          "kill_timeout": 5}}},
    "backend": {"task": {"worker": {"driver": "java", "confg": {}}}}}}}}`
  const errors = errorsOf(parseJobText(text))
  t.deepEqual(
    errors.map((e) => e.field),
    [
      'job.web.type',
      'job.web.priority',
      `${G}.count`,
      `${G}.network.port.http.static`,
      `${G}.restart.attempts`,
      `${G}.restart.interval`,
      `${T}.config.image`,
      `${T}.config.ports[0]`,
      `${T}.env.PORT`,
      `${T}.resources.cpu`,
      `${T}.kill_timeout`,
      'job.web.group.backend.task.worker.confg',
      'job.web.group.backend.task.worker.driver',
    ],
  )
  t.is(errors[2].message, 'must be an integer ≥ 0 (got -1)')
  t.is(errors[7].message, 'unknown port label "https": group "frontend" declares "http" (did you mean "http"?)')
  t.is(errors[11].message, 'unknown field (did you mean "config"?)')
  t.is(errors[12].message, 'unknown driver "java" (known drivers: "docker", "exec")')
})

test('errors are plain data: field and message only', (t) => {
  const { root, group } = parts()
  group.count = -1
  t.deepEqual(validateJob(root), { ok: false, errors: [{ field: `${G}.count`, message: 'must be an integer ≥ 0 (got -1)' }] })
})

test('a port is published for tcp unless it names udp or tcp+udp', (t) => {
  const { root, group } = parts()
  group.network = { port: { http: { to: 80 }, dns: { to: 53, protocol: 'udp' }, both: { protocol: 'tcp+udp' }, plain: { protocol: 'tcp' } } }
  t.deepEqual(spec(validateJob(root)).groups[0].ports, [
    { label: 'http', to: 80 }, { label: 'dns', to: 53, protocol: 'udp' }, { label: 'both', protocol: 'tcp+udp' }, { label: 'plain' },
  ])
  group.network = { port: { http: {}, dns: { protocol: 'UDP' }, x: { protocol: 17 } } }
  const errors = errorsOf(validateJob(root)).map((e) => `${e.field}: ${e.message}`)
  t.is(errors.length, 2)
  t.regex(errors[0]!, /^job\.web\.group\.frontend\.network\.port\.dns\.protocol: .*"tcp", "udp", "tcp\+udp"/)
  t.regex(errors[1]!, /^job\.web\.group\.frontend\.network\.port\.x\.protocol: /)
})
