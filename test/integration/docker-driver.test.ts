// The docker driver against the real engine and the local busybox test image.
import { createServer, type Server } from 'node:net'
import test, { type ExecutionContext } from 'ava'
import type Docker from 'dockerode'
import { DockerDriver } from '../../src/runtime/docker.ts'
import { DriverError, type TaskHandle, type TaskStartSpec } from '../../src/runtime/driver.ts'
import { TEST_IMAGE, allocContainers, removeAllocContainers, requireDocker } from '../helpers/docker.ts'
import { dockerSpec, eventually, freePort, readAll, uniqueId } from '../helpers/tasks.ts'

const driver = new DockerDriver({ pullTimeoutMs: 3000 })
const HTTPD = { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], ports: ['http'] }

/** Engine client + a unique alloc id whose containers are removed when the test ends. */
async function setup(t: ExecutionContext): Promise<{ docker: Docker; allocId: string; nodeId: string }> {
  const docker = await requireDocker()
  const allocId = uniqueId('alloc')
  t.teardown(() => removeAllocContainers(docker, allocId))
  return { docker, allocId, nodeId: uniqueId('node') }
}

async function start(t: ExecutionContext, spec: TaskStartSpec): Promise<TaskHandle> {
  const handle = await driver.start(spec)
  t.teardown(() => driver.destroy(handle))
  return handle
}

async function httpdSpec(allocId: string, nodeId: string): Promise<{ spec: TaskStartSpec; port: number }> {
  const port = await freePort('127.0.0.1')
  const spec = dockerSpec(HTTPD, {
    allocId,
    nodeId,
    ports: [{ label: 'http', value: port, to: 8080, hostIp: '127.0.0.1' }],
    env: { GREETING: 'hello' },
  })
  return { spec, port }
}

test('fingerprint reports a healthy engine and its version', async (t) => {
  await requireDocker()
  const fp = await driver.fingerprint()
  t.true(fp.healthy, fp.detail)
  t.regex(fp.attributes['driver.docker.version'], /^\d+\.\d+/)
})

test('fingerprint of an unreachable engine is unhealthy, not an exception', async (t) => {
  const fp = await new DockerDriver({ socketPath: '/nonexistent/docker.sock' }).fingerprint()
  t.false(fp.healthy)
  t.regex(fp.detail, /not reachable at \/nonexistent\/docker.sock/)
})

test('start against an unreachable engine is a recoverable DriverError', async (t) => {
  const unreachable = new DockerDriver({ socketPath: '/nonexistent/docker.sock' })
  const err = await t.throwsAsync(unreachable.start(dockerSpec({ image: TEST_IMAGE })), { instanceOf: DriverError })
  t.regex(err!.message, /^docker engine not reachable at \/nonexistent\/docker.sock: /)
  t.true(err!.recoverable)
})

test('httpd serves its index page on the published loopback port; labels and env are set', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const { spec, port } = await httpdSpec(allocId, nodeId)
  const handle = await start(t, spec)
  t.is(handle.driver, 'docker')
  t.is(handle.allocId, allocId)
  t.is(handle.taskName, 'web')

  const body = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`)
    return res.ok ? res.text() : undefined
  })
  t.regex(body, /Hello from Shoal/)

  const info = await docker.getContainer(handle.id).inspect()
  t.is(info.Name, `/shoal-web-${allocId}`)
  t.like(info.Config.Labels, {
    'shoal.alloc': allocId,
    'shoal.job': 'test-job',
    'shoal.group': 'test-group',
    'shoal.task': 'web',
    'shoal.node': nodeId,
  })
  t.true(info.Config.Env.includes('GREETING=hello'))
  t.deepEqual(info.Config.Cmd, ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'])
  t.true(info.HostConfig.Init)
  t.is(info.HostConfig.Memory, 64 * 1024 * 1024)
  t.is(info.HostConfig.MemorySwap, 64 * 1024 * 1024)
  t.is(info.HostConfig.CpuShares, 100)
  t.deepEqual(info.HostConfig.PortBindings?.['8080/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }])
})

test('start is idempotent: a second start returns the running container, never a second one', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const { spec } = await httpdSpec(allocId, nodeId)
  const [a, b] = await Promise.all([driver.start(spec), driver.start(spec)])
  t.teardown(() => driver.destroy(a))
  const c = await driver.start(spec)
  t.is(a.id, b.id)
  t.is(a.id, c.id)
  t.is((await allocContainers(docker, allocId)).length, 1)
})

test('start after the task exited starts the same container again', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const spec = dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo run; exit 3'] }, { allocId, nodeId })
  const first = await start(t, spec)
  t.like(await driver.wait(first), { exitCode: 3, oomKilled: false })
  const second = await driver.start(spec)
  t.is(second.id, first.id)
  t.like(await driver.wait(second), { exitCode: 3 })
  t.is((await allocContainers(docker, allocId)).length, 1)
  t.is(await readAll(await driver.logs(second, { stream: 'stdout', follow: false })), 'run\nrun\n')
})

test('wait reports the exit code of a finished container, also to late and concurrent waiters', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const spec = dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'sleep 1; exit 42'] }, { allocId, nodeId })
  const handle = await start(t, spec)
  const results = await Promise.all([driver.wait(handle), driver.wait(handle), driver.wait(handle)])
  for (const r of results) t.deepEqual(r, { exitCode: 42, oomKilled: false })
  t.deepEqual(await driver.wait(handle), { exitCode: 42, oomKilled: false })
})

test('a container killed through the API reports signal 9 / exit 137', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const spec = dockerSpec({ image: TEST_IMAGE, command: '/bin/sleep', args: ['300'] }, { allocId, nodeId })
  const handle = await start(t, spec)
  const waiting = driver.wait(handle)
  await docker.getContainer(handle.id).kill()
  const result = await waiting
  t.like(result, { exitCode: 137, signal: 9, oomKilled: false })
})

test('a container over its memory limit is reported as OOM-killed', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const spec = dockerSpec(
    { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'x=a; while true; do x=$x$x; done'] },
    { allocId, nodeId, memoryMB: 8 },
  )
  const handle = await start(t, spec)
  const result = await driver.wait(handle)
  t.true(result.oomKilled)
  t.is(result.exitCode, 137)
  t.is(result.signal, 9)
})

test('a missing image fails with a DriverError naming the image, leaving no container', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const spec = dockerSpec({ image: 'shoal-test/does-not-exist:1.0' }, { allocId, nodeId })
  const err = await t.throwsAsync(driver.start(spec), { instanceOf: DriverError })
  t.regex(err!.message, /^image "shoal-test\/does-not-exist:1\.0" not found locally and could not be pulled: .+/)
  t.false(err!.recoverable)
  t.is((await allocContainers(docker, allocId)).length, 0)
})

test('a host port held by another process fails with a DriverError naming the port', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const { spec, port } = await httpdSpec(allocId, nodeId)
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const err = await t.throwsAsync(driver.start(spec), { instanceOf: DriverError })
  t.is(err!.message, `port 127.0.0.1:${port} is already in use`)
  t.is((await allocContainers(docker, allocId)).length, 0)
})

test('a host port already published by another container fails with a DriverError naming the port', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const { spec, port } = await httpdSpec(allocId, nodeId)
  await start(t, spec)
  const otherAlloc = uniqueId('alloc')
  t.teardown(() => removeAllocContainers(docker, otherAlloc))
  const err = await t.throwsAsync(driver.start({ ...spec, allocId: otherAlloc }), { instanceOf: DriverError })
  t.is(err!.message, `port 127.0.0.1:${port} is already in use`)
  t.is((await allocContainers(docker, otherAlloc)).length, 0)
})

test('a command missing from the image fails with a DriverError, leaving no container', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const missing = dockerSpec({ image: TEST_IMAGE, command: '/bin/nope' }, { allocId, nodeId })
  const err = await t.throwsAsync(driver.start(missing), { instanceOf: DriverError })
  t.is(err!.message, 'command "/bin/nope" not found in image')
  const bare = dockerSpec({ image: TEST_IMAGE, command: 'nope' }, { allocId, nodeId })
  t.is((await t.throwsAsync(driver.start(bare)))!.message, 'command "nope" not found in image')
  const notExec = dockerSpec({ image: TEST_IMAGE, command: '/www/index.html' }, { allocId, nodeId })
  t.is((await t.throwsAsync(driver.start(notExec)))!.message, 'command "/www/index.html" is not executable in image')
  t.is((await allocContainers(docker, allocId)).length, 0)
})

test('a command found through the image PATH (a busybox symlink) starts', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const handle = await start(t, dockerSpec({ image: TEST_IMAGE, command: 'true' }, { allocId, nodeId }))
  t.deepEqual(await driver.wait(handle), { exitCode: 0, oomKilled: false })
})

test('logs: stdout and stderr separately, tail counts lines of the chosen stream', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const script = 'for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done'
  const handle = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', script] }, { allocId, nodeId }))
  await driver.wait(handle)
  const read = async (stream: 'stdout' | 'stderr', tail?: number) =>
    readAll(await driver.logs(handle, { stream, follow: false, tail }))
  t.is(await read('stdout'), 'out1\nout2\nout3\nout4\nout5\n')
  t.is(await read('stderr'), 'err1\nerr2\nerr3\nerr4\nerr5\n')
  t.is(await read('stdout', 2), 'out4\nout5\n')
  t.is(await read('stderr', 2), 'err4\nerr5\n')
  t.is(await read('stdout', 0), '')
  t.is(await read('stdout', 100), 'out1\nout2\nout3\nout4\nout5\n')
  // Follow on an exited container: the history, then the end.
  t.is(await readAll(await driver.logs(handle, { stream: 'stderr', follow: true, tail: 1 })), 'err5\n')
})

test('logs follow sees new lines and ends when the container exits', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const script = 'for i in 1 2 3; do echo out$i; echo err$i >&2; done; sleep 2; echo out4; echo err4 >&2; sleep 1'
  const handle = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', script] }, { allocId, nodeId }))
  await eventually(async () => (await readAll(await driver.logs(handle, { stream: 'stdout', follow: false }))).includes('out3'))
  const opened = Date.now()
  const [tailed, all] = await Promise.all([
    readAll(await driver.logs(handle, { stream: 'stdout', follow: true, tail: 2 })),
    readAll(await driver.logs(handle, { stream: 'stderr', follow: true })),
  ])
  t.true(Date.now() - opened > 1000, 'the follow streams stayed open for the later lines')
  t.is(tailed, 'out2\nout3\nout4\n')
  t.is(all, 'err1\nerr2\nerr3\nerr4\n')
})

test('destroying a follow stream releases it', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const handle = await start(
    t,
    dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'while true; do echo tick; sleep 1; done'] }, { allocId, nodeId }),
  )
  const stream = await driver.logs(handle, { stream: 'stdout', follow: true })
  const first = await new Promise<string>((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString())))
  t.is(first, 'tick\n')
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()))
  stream.destroy()
  await closed
  t.true(stream.destroyed)
})

test('stop of httpd returns within a few seconds thanks to the init process', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const { spec, port } = await httpdSpec(allocId, nodeId)
  const handle = await start(t, spec)
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/`)).ok)
  const began = Date.now()
  await driver.stop(handle, 10_000)
  const took = Date.now() - began
  t.true(took < 3000, `stop took ${took} ms`)
  t.like(await driver.wait(handle), { exitCode: 143, signal: 15, oomKilled: false })
  // Already stopped, then gone: no errors.
  await driver.stop(handle, 1000)
  await driver.destroy(handle)
  await driver.stop(handle, 1000)
  await driver.destroy(handle)
  const result = await driver.wait(handle)
  t.truthy(result.error)
})

test('wait resolves with an error result when the container is removed while it runs', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const handle = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/sleep', args: ['300'] }, { allocId, nodeId }))
  const waiting = driver.wait(handle)
  await new Promise((resolve) => setTimeout(resolve, 200))
  await driver.destroy(handle)
  const result = await waiting
  t.truthy(result.error, JSON.stringify(result))
})

test('recover finds the running and exited containers of the node', async (t) => {
  const { allocId, nodeId } = await setup(t)
  const running = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/sleep', args: ['300'] }, { allocId, nodeId, name: 'a' }))
  const exited = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/true' }, { allocId, nodeId, name: 'b' }))
  await driver.wait(exited)
  const recovered = await new DockerDriver().recover(nodeId)
  recovered.sort((x, y) => x.taskName.localeCompare(y.taskName))
  t.is(recovered.length, 2)
  t.like(recovered[0], { allocId, taskName: 'a', running: true, handle: { id: running.id, driver: 'docker', allocId, taskName: 'a' } })
  t.like(recovered[1], { allocId, taskName: 'b', running: false, handle: { id: exited.id } })
  t.is(recovered[0].handle.startedAt, running.startedAt)
  t.deepEqual(await new DockerDriver().recover(uniqueId('other-node')), [])
})

test('the logs block sets json-file rotation on the container (defaults 10 × 10 MB); logs read back', async (t) => {
  const { docker, allocId, nodeId } = await setup(t)
  const plain = await start(t, dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo hi; sleep 30'] }, { allocId, nodeId, name: 'plain' }))
  const spec = dockerSpec({ image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo rotated; sleep 30'] }, { allocId, nodeId, name: 'rotated' })
  spec.task.logs = { maxFiles: 3, maxFileSizeMB: 2 }
  const rotated = await start(t, spec)
  const logConfig = async (h: TaskHandle) => (await docker.getContainer(h.id).inspect()).HostConfig.LogConfig
  t.deepEqual(await logConfig(plain), { Type: 'json-file', Config: { 'max-file': '10', 'max-size': '10m' } })
  t.deepEqual(await logConfig(rotated), { Type: 'json-file', Config: { 'max-file': '3', 'max-size': '2m' } })
  await eventually(async () => (await readAll(await driver.logs(rotated, { stream: 'stdout', follow: false }))) === 'rotated\n')
  t.pass()
})
