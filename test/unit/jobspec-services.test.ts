// The service block (group and task level), publish and upstreams: normalised
// form and errors with field paths.
import test from 'ava'
import { validateJob, type FieldError } from '../../src/jobspec/index.ts'

const httpd = (extra: Record<string, unknown> = {}) => ({ driver: 'docker', config: { image: 'busybox', ports: ['http'] }, ...extra })
const job = (group: Record<string, unknown>, more: Record<string, unknown> = {}) =>
  ({ job: { app: { group: { fe: { network: { port: { http: { to: 80 }, admin: {} } }, task: { web: httpd() }, ...group } }, ...more } } })

function errors(raw: unknown): FieldError[] {
  const r = validateJob(raw)
  if (r.ok) throw new Error('expected errors')
  return r.errors
}
const fields = (raw: unknown) => errors(raw).map((e) => e.field)

test('group and task services are stored on the group, task ones with their task; defaults applied', (t) => {
  const r = validateJob(job({
    service: [{ name: 'web', port: 'http', tags: ['v1'], checks: [{ type: 'http', path: '/health', interval: '1s' }],
      publish: { port: 8080, balance: 'least-conn', proxy_protocol: 'v2', mode: 'http' } }],
    task: { web: httpd({ service: [{ name: 'web-admin', port: 'http', checks: [{ type: 'tcp' }, { type: 'command', command: 'true' }], publish: { port: 8081 } }],
      upstreams: [{ service: 'db', local_port: 5432 }] }) },
  }))
  if (!r.ok) return t.fail(JSON.stringify(r.errors))
  const g = r.spec.groups[0]!
  t.deepEqual(g.services, [
    { name: 'web', port: 'http', tags: ['v1'],
      checks: [{ type: 'http', port: 'http', path: '/health', intervalMs: 1000, timeoutMs: 2000, retries: 3, startPeriodMs: 0 }],
      publish: { port: 8080, balance: 'least-conn', proxyProtocol: 'v2', mode: 'http' } },
    { name: 'web-admin', port: 'http', tags: [], task: 'web',
      checks: [
        { type: 'tcp', port: 'http', intervalMs: 10000, timeoutMs: 2000, retries: 3, startPeriodMs: 0 },
        { type: 'command', command: 'true', args: [], intervalMs: 10000, timeoutMs: 2000, retries: 3, startPeriodMs: 0 },
      ],
      publish: { port: 8081, balance: 'round-robin', mode: 'tcp' } },
  ])
  t.deepEqual(g.tasks[0]!.upstreams, [{ service: 'db', localPort: 5432 }])
})

test('a job without services stores none', (t) => {
  const r = validateJob(job({}))
  t.true(r.ok)
  if (r.ok) t.false('services' in r.spec.groups[0]!)
})

test('service fields: names are DNS labels, ports are group labels, tags, publish settings', (t) => {
  const errs = errors(job({ service: [
    { name: 'Web_1', port: 'htp', tags: ['', 'a', 'a'], publish: { port: 0, balance: 'random', proxy_protocol: 2, mode: 'udp', extra: 1 } },
    { port: 'http', check: [] },
    { name: 'x'.repeat(64), port: 'http', publish: {} },
  ] }))
  const by = Object.fromEntries(errs.map((e) => [e.field, e.message]))
  t.regex(by['job.app.group.fe.service[0].name']!, /invalid service name "Web_1": it is a DNS label/)
  t.regex(by['job.app.group.fe.service[0].port']!, /unknown port label "htp".*did you mean "http"/)
  t.is(by['job.app.group.fe.service[0].tags[0]'], 'must not be empty')
  t.regex(by['job.app.group.fe.service[0].tags[2]']!, /listed more than once/)
  t.regex(by['job.app.group.fe.service[0].publish.port']!, /between 1 and 65535/)
  t.regex(by['job.app.group.fe.service[0].publish.balance']!, /"round-robin", "least-conn"/)
  t.regex(by['job.app.group.fe.service[0].publish.proxy_protocol']!, /quote it: "v2"/)
  t.regex(by['job.app.group.fe.service[0].publish.mode']!, /"tcp", "http"/)
  t.regex(by['job.app.group.fe.service[0].publish.extra']!, /unknown field/)
  t.is(by['job.app.group.fe.service[1].name'], 'is required')
  t.regex(by['job.app.group.fe.service[1].check']!, /the key is "checks"/)
  t.regex(by['job.app.group.fe.service[2].name']!, /at most 63 characters/)
  t.regex(by['job.app.group.fe.service[2].publish.port']!, /is required/)
  t.deepEqual(fields(job({ service: { name: 'web', port: 'http' } })), ['job.app.group.fe.service'])
  t.regex(errors(job({ services: [] }))[0]!.message, /the key is "service"/)
})

test('service names are unique within the job; a port is published once and not over a static port', (t) => {
  const errs = errors({ job: { app: { group: {
    a: { network: { port: { http: { static: 9000 } } }, service: [{ name: 'web', port: 'http', publish: { port: 8080 } }], task: { t: httpd() } },
    b: { network: { port: { http: {} } }, service: [{ name: 'api', port: 'http', publish: { port: 9000 } }],
      task: { t: httpd({ service: [{ name: 'web', port: 'http', publish: { port: 8080 } }] }) } },
  } } } })
  const by = Object.fromEntries(errs.map((e) => [e.field, e.message]))
  t.is(by['job.app.group.b.task.t.service[0].name'], 'service "web" is already declared at job.app.group.a.service[0]; service names are unique within a job')
  t.regex(by['job.app.group.b.task.t.service[0].publish.port']!, /port 8080 is already published by service "web" \(job\.app\.group\.a\.service\[0\]\)/)
  t.regex(by['job.app.group.b.service[0].publish.port']!, /port 9000 is the static host port of a\.http/)
})

test('checks: the service port by default; command checks need a task; docker ports must be published', (t) => {
  const by = (raw: unknown) => Object.fromEntries(errors(raw).map((e) => [e.field, e.message]))
  const two = by(job({
    service: [{ name: 'web', port: 'admin', checks: [{ type: 'command', command: 'true' }, { type: 'http', port: 'nope' }] }],
    task: { web: httpd(), side: httpd({ config: { image: 'x' } }) },
  }))
  t.regex(two['job.app.group.fe.service[0].port']!, /port "admin" is not published by a docker task/)
  t.regex(two['job.app.group.fe.service[0].checks[0].type']!, /group has 2 main tasks; declare this service in the task block/)
  t.regex(two['job.app.group.fe.service[0].checks[1].port']!, /unknown port label "nope"/)
  // One main task: a group-level command check runs there; exec tasks reach any port.
  t.true(validateJob(job({ service: [{ name: 'web', port: 'http', checks: [{ type: 'command', command: 'true' }] }] })).ok)
  t.true(validateJob(job({ service: [{ name: 'web', port: 'admin' }], task: { w: { driver: 'exec', config: { command: 'x' } } } })).ok)
})

test('upstreams: service names and local ports checked; an unknown service is fine at submission', (t) => {
  const by = Object.fromEntries(errors(job({ task: { web: httpd({ upstreams: [
    { service: 'DB', local_port: 5432 }, { service: 'cache', local_port: 5432 }, { service: 'x' }, { local_port: 70000, destination_name: 'y' },
  ] }) } })).map((e) => [e.field, e.message]))
  t.regex(by['job.app.group.fe.task.web.upstreams[0].service']!, /did you mean "db"/)
  t.regex(by['job.app.group.fe.task.web.upstreams[1].local_port']!, /local port 5432 is used by another upstream/)
  t.regex(by['job.app.group.fe.task.web.upstreams[2].local_port']!, /is required/)
  t.is(by['job.app.group.fe.task.web.upstreams[3].service'], 'is required')
  t.regex(by['job.app.group.fe.task.web.upstreams[3].local_port']!, /between 1 and 65535/)
  t.regex(by['job.app.group.fe.task.web.upstreams[3].destination_name']!, /Shoal calls it "service"/)
  t.true(validateJob(job({ task: { web: httpd({ upstreams: [{ service: 'later', local_port: 6000 }] }) } })).ok)
  t.regex(errors(job({ upstreams: [] }))[0]!.message, /task setting/)
})
