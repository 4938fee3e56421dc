// The variables store through the CLI and the HTTP API of a real agent, and
// its durability across kill -9.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentProcess, freePort, runCli, tempDir } from '../harness/agent.ts'

test('var put/get/list/rm with check-and-set; values survive kill -9 of the agent', async (t) => {
  const dir = await tempDir('vars')
  let agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-vars', bind: '127.0.0.24', httpPort: await freePort() })
  t.teardown(async () => {
    await agent.kill()
    await rm(dir, { recursive: true, force: true })
  })
  const cli = (...args: string[]) => runCli(args, agent.address)

  let r = await cli('var', 'put', 'app/greeting', 'hello', '--cas', '0', '--json')
  t.is(r.code, 0, r.stderr)
  const first = JSON.parse(r.stdout) as { path: string; modifyIndex: number }
  t.is(first.path, 'app/greeting')

  r = await cli('var', 'put', 'app/greeting', 'again', '--cas', '0')
  t.is(r.code, 1, 'create-only on an existing variable is refused')
  t.regex(r.stderr, /was modified at index \d+, not 0/)
  t.regex(r.stderr, new RegExp(`Current modify index: ${first.modifyIndex}`))

  await writeFile(join(dir, 'v.txt'), 'from a file')
  r = await cli('var', 'put', 'app/greeting', `@${join(dir, 'v.txt')}`, '--cas', String(first.modifyIndex))
  t.is(r.code, 0, r.stderr)
  r = await cli('var', 'get', 'app/greeting')
  t.is(r.stdout, 'from a file\n')

  await cli('var', 'put', 'app/other', 'x')
  await cli('var', 'put', 'zeta', 'y')
  r = await cli('var', 'list', 'app/', '--json')
  t.deepEqual((JSON.parse(r.stdout) as { path: string }[]).map((v) => v.path), ['app/greeting', 'app/other'])

  // HTTP API: the shapes, 409 with the current index, 400 naming the field, 404.
  const get = await agent.get<{ path: string; value: string; createIndex: number; modifyIndex: number }>('/v1/var/app/greeting')
  t.like(get, { path: 'app/greeting', value: 'from a file', createIndex: first.modifyIndex })
  const stale = await fetch(`${agent.address}/v1/var/app/greeting?cas=${first.modifyIndex}`, { method: 'PUT', body: JSON.stringify({ value: 'z' }) })
  t.is(stale.status, 409)
  t.like(await stale.json(), { modifyIndex: get.modifyIndex })
  for (const [url, body, field] of [
    ['/v1/var/app//x', '{"value":"v"}', 'path'], ['/v1/var/app/x', '{"value":3}', 'value'],
    ['/v1/var/app/x', '[1]', 'body'], ['/v1/var/app/x?cas=-1', '{"value":"v"}', 'cas'], ['/v1/var/app/x', '{"value', 'body'],
  ] as const) {
    const res = await fetch(agent.address + url, { method: 'PUT', body })
    t.is(res.status, 400, url + body)
    t.like(await res.json(), { field }, url + body)
  }
  t.is((await fetch(`${agent.address}/v1/var/missing`)).status, 404)
  r = await cli('var', 'put', 'bad//path', 'v')
  t.is(r.code, 1)
  t.regex(r.stderr, /path: "bad\/\/path" must be segments/)
  r = await cli('var', 'put', 'app/x', '@/nonexistent/file')
  t.is(r.code, 1)
  t.regex(r.stderr, /value: cannot read "\/nonexistent\/file": no such file/)

  // Acknowledged writes survive kill -9.
  await agent.kill('SIGKILL')
  agent = await AgentProcess.start(agent.options)
  r = await runCli(['var', 'get', 'app/greeting'], agent.address)
  t.is(r.stdout, 'from a file\n')
  r = await runCli(['var', 'rm', 'app/greeting'], agent.address)
  t.is(r.code, 0, r.stderr)
  r = await runCli(['var', 'get', 'app/greeting'], agent.address)
  t.is(r.code, 4)
  t.regex(r.stderr, /variable "app\/greeting" not found/)
})
