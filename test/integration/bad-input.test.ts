// Bad input to the CLI and the HTTP API: a clear error naming the field, a
// non-zero exit or 4xx status, and the agent's state unchanged.
import test from 'ava'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, freePort, ROOT, runCli, tempDir } from '../harness/agent.ts'

const example = JSON.parse(readFileSync(join(ROOT, 'examples/web.json'), 'utf8')) as {
  job: { web: { group: { frontend: { count: unknown; task: { httpd: Record<string, unknown> & { config: Record<string, unknown>; resources: Record<string, unknown> } } } } } }
}
type Example = typeof example
function variant(edit: (j: Example) => void): string {
  const copy = structuredClone(example)
  edit(copy)
  return JSON.stringify(copy, null, 2)
}
const httpd = (j: Example) => j.job.web.group.frontend.task.httpd
const F = 'job.web.group.frontend'

let agent: AgentProcess
let dir: string
test.before(async () => {
  dir = await tempDir('bad-input')
  agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-bad-input', bind: '127.0.0.22', httpPort: await freePort() })
})
test.after.always(async () => {
  await agent?.kill()
  await rm(dir, { recursive: true, force: true })
})

async function jobRun(name: string, text: string) {
  const file = join(dir, `${name}.json`)
  await writeFile(file, text)
  return runCli(['job', 'run', file, '--detach'], agent.address)
}

async function assertStateUnchanged(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }) {
  t.deepEqual(await agent.get('/v1/jobs'), [], 'no job registered')
  t.deepEqual(await agent.get('/v1/allocations'), [], 'no allocation placed')
}

const cases: [string, string, RegExp][] = [
  ['invalid JSON', '{"job": {"web":\n  {"type": "service",,}}}', /^Error: file: invalid JSON at line 2, column 22/m],
  ['a key given twice', variant((j) => (j.job.web.group.frontend.count = 1)).replace('"count": 1', '"count": 1, "count": 2'), new RegExp(`^Error: ${F}\\.count: duplicate key at line \\d+, column \\d+`, 'm')],
  ['count of the wrong type', variant((j) => (j.job.web.group.frontend.count = 'two')), new RegExp(`^Error: ${F}\\.count: must be an integer`, 'm')],
  ['negative count', variant((j) => (j.job.web.group.frontend.count = -1)), new RegExp(`^Error: ${F}\\.count: must be an integer ≥ 0 \\(got -1\\)`, 'm')],
  ['non-integer count', variant((j) => (j.job.web.group.frontend.count = 1.5)), new RegExp(`^Error: ${F}\\.count: must be an integer ≥ 0`, 'm')],
  ['unknown driver', variant((j) => (httpd(j).driver = 'rkt')), new RegExp(`^Error: ${F}\\.task\\.httpd\\.driver: .*"rkt"`, 'm')],
  ['empty image', variant((j) => (httpd(j).config.image = '')), new RegExp(`^Error: ${F}\\.task\\.httpd\\.config\\.image: `, 'm')],
  ['unknown port label', variant((j) => (httpd(j).config.ports = ['admin'])), new RegExp(`^Error: ${F}\\.task\\.httpd\\.config\\.ports.*"admin"`, 'm')],
  ['memory too large for the node', variant((j) => (httpd(j).resources.memory = 64_000_000)), new RegExp(`^Error: ${F}\\.task\\.httpd\\.resources\\.memory: .*more than the largest node has`, 'm')],
]

for (const [name, text, expected] of cases) {
  test.serial(`job run with ${name}: clear error naming the field, exit 1, state unchanged`, async (t) => {
    const r = await jobRun(name.replace(/\W+/g, '-'), text)
    t.is(r.code, 1, r.stdout + r.stderr)
    t.regex(r.stderr, expected)
    t.notRegex(r.stderr, /at .*\.ts:\d+/, 'no stack trace')
    await assertStateUnchanged(t)
  })
}

test.serial('several problems are all reported', async (t) => {
  const r = await jobRun('several', variant((j) => {
    j.job.web.group.frontend.count = -3
    httpd(j).config.image = ''
  }))
  t.is(r.code, 1)
  t.regex(r.stderr, /frontend\.count/)
  t.regex(r.stderr, /config\.image/)
})

test.serial('with --json, a failed command prints its problems as JSON on stdout, with fields and exit code', async (t) => {
  const file = join(dir, 'json-errors.json')
  await writeFile(file, variant((j) => {
    j.job.web.group.frontend.count = -3
    httpd(j).config.image = ''
  }))
  let r = await runCli(['job', 'run', file, '--json'], agent.address)
  t.is(r.code, 1)
  const run = JSON.parse(r.stdout) as { error: { message: string; errors: { field?: string; message: string }[]; exitCode: number } }
  t.is(run.error.exitCode, 1)
  t.deepEqual(run.error.errors.map((e) => e.field).sort(), [`${F}.count`, `${F}.task.httpd.config.image`])
  t.regex(run.error.message, /frontend\.count: must be an integer/)
  r = await runCli(['job', 'status', 'nope', '--json'], agent.address)
  t.is(r.code, 4)
  const status = JSON.parse(r.stdout) as { error: { message: string; exitCode: number } }
  t.like(status.error, { exitCode: 4 })
  t.regex(status.error.message, /not found/)
  t.regex(r.stderr, /^Error: .*not found/m, 'stderr still says it')
  await assertStateUnchanged(t)
})

test.serial('job run of a missing file names the file', async (t) => {
  const r = await runCli(['job', 'run', join(dir, 'nope.json')], agent.address)
  t.is(r.code, 1)
  t.regex(r.stderr, /file: cannot read ".*nope\.json": no such file/)
})

test.serial('the API answers 400 with {error, field} for the same problems, 404 for unknown jobs and allocations', async (t) => {
  const post = (body: string) => fetch(`${agent.address}/v1/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  let res = await post('{"job": ')
  t.is(res.status, 400)
  t.like(await res.json(), { field: 'body' })
  // The agent parses a job's text itself: JSON errors with line and column, keys given twice.
  res = await post('{"job": {"web":\n  {"type": "service",,}}}')
  t.is(res.status, 400)
  t.regex(((await res.json()) as { error: string }).error, /^body: invalid JSON at line 2, column 22/)
  res = await post('{"job": {"web": {"type": "service", "type": "batch"}}}')
  t.is(res.status, 400)
  t.like(await res.json(), { field: 'job.web.type' })
  res = await post(variant((j) => (j.job.web.group.frontend.count = -1)))
  t.is(res.status, 400)
  const body = (await res.json()) as { error: string; field: string; errors: { field: string }[] }
  t.is(body.field, `${F}.count`)
  t.regex(body.error, /must be an integer/)
  res = await post(variant((j) => (httpd(j).resources.memory = 64_000_000)))
  t.is(res.status, 400)
  t.like(await res.json(), { field: `${F}.task.httpd.resources.memory` })
  for (const path of ['/v1/job/nope', '/v1/allocation/nope', '/v1/evaluation/nope', '/v1/node/nope', '/v1/no/such/endpoint']) {
    const r = await fetch(agent.address + path)
    t.is(r.status, 404, path)
    t.truthy(((await r.json()) as { error?: string }).error, path)
  }
  const del = await fetch(`${agent.address}/v1/job/nope`, { method: 'DELETE' })
  t.is(del.status, 404)
  await assertStateUnchanged(t)
})

test.serial('CLI reads of unknown ids fail with a clear message and a non-zero exit', async (t) => {
  for (const args of [['job', 'status', 'nope'], ['alloc', 'status', 'nope'], ['alloc', 'logs', 'nope'], ['job', 'stop', 'nope']]) {
    const r = await runCli(args, agent.address)
    t.not(r.code, 0, args.join(' '))
    t.regex(r.stderr, /not found/, args.join(' '))
  }
})

test.serial('an unreachable agent or a bad --address gets a clear error', async (t) => {
  const port = await freePort()
  let r = await runCli(['job', 'status'], `http://127.0.0.1:${port}`)
  t.is(r.code, 1)
  t.regex(r.stderr, /cannot reach the Shoal agent at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  // job run leaves checking the file to the agent; with none to reach, it checks the file itself first.
  const bad = join(dir, 'unreachable-bad.json')
  await writeFile(bad, variant((j) => (j.job.web.group.frontend.count = -1)))
  r = await runCli(['job', 'run', bad], `http://127.0.0.1:${port}`)
  t.is(r.code, 1)
  t.regex(r.stderr, new RegExp(`^Error: ${F}\\.count: must be an integer`, 'm'))
  t.notRegex(r.stderr, /cannot reach/)
  r = await runCli(['job', 'run', join(ROOT, 'examples/web.json')], `http://127.0.0.1:${port}`)
  t.is(r.code, 1)
  t.regex(r.stderr, /cannot reach the Shoal agent at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  r = await runCli(['job', 'status', '--address', 'ftp://x'])
  t.is(r.code, 1)
  t.regex(r.stderr, /--address: only http:\/\/ is supported/)
})

test.serial('the agent rejects malformed flags with the flag named', async (t) => {
  const r = await runCli(['agent', '--dev', '--http', '127.0.0.1:99999', '--data-dir', join(dir, 'x')])
  t.is(r.code, 1)
  t.regex(r.stderr, /--http: "127\.0\.0\.1:99999" is not HOST or HOST:PORT/)
  // A malformed member address is refused at once (the join would otherwise retry it for 30 s and say so).
  for (const [flag, value] of [['--join', '127.0.0.1:0'], ['--advertise', '[nope]']]) {
    const bad = await runCli(['agent', '--bind', '127.0.3.21', '--http', '127.0.0.1:0', '--dns-addr', 'off', '--data-dir', join(dir, 'join'), flag!, value!], undefined, 20_000)
    t.is(bad.code, 1, flag)
    t.regex(bad.stderr, new RegExp(`${flag}: invalid peer address`), flag)
  }
})

test.serial('the agent rejects bad DNS and GC flags, and an explicit --dns-addr it cannot bind, with the flag named', async (t) => {
  const agent = (...extra: string[]) => runCli(['agent', '--dev', '--bind', '127.0.3.20', '--http', '127.0.0.1:0', '--data-dir', join(dir, 'dns'), ...extra], undefined, 30_000)
  let r = await agent('--dns-addr', '127.0.3.20:70000')
  t.is(r.code, 1)
  t.regex(r.stderr, /--dns-addr: "127\.0\.3\.20:70000" is not HOST or HOST:PORT/)
  r = await agent('--dns-domain', 'bad domain!')
  t.is(r.code, 1)
  t.regex(r.stderr, /--dns-domain: "bad domain!" is not a domain name/)
  r = await agent('--gc-threshold', 'soon')
  t.is(r.code, 1)
  t.regex(r.stderr, /--gc-threshold: "soon" must be a duration string like "5s" or "2m"/)
  r = await agent('--gc-interval', '500ms')
  t.is(r.code, 1)
  t.regex(r.stderr, /--gc-interval: must be at least 1s \(got "500ms"\)/)
  r = await agent('--dns-recursor', '10.0.0.1:0')
  t.is(r.code, 1)
  t.regex(r.stderr, /--dns-recursor: "10\.0\.0\.1:0" needs a port other than 0/)
  // A port that is taken: an explicit address stops the agent with the reason.
  const taken = createSocket('udp4')
  await new Promise<void>((resolve) => taken.bind(0, '127.0.3.20', () => resolve()))
  t.teardown(() => taken.close())
  r = await agent('--dns-addr', `127.0.3.20:${taken.address().port}`)
  t.is(r.code, 1)
  t.regex(r.stderr, /--dns-addr: cannot listen on 127\.0\.3\.20:\d+: .*EADDRINUSE/)
})
