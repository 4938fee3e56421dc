// The Docker Engine API client (src/runtime/docker-engine.ts) against the real engine:
// the calls the driver's tests do not look at directly (archive stat, exec stdin through
// the hijacked connection, a TTY exec's size, a failed pull's message).
import test, { type ExecutionContext } from 'ava'
import { DockerEngine, DockerEngineError } from '../../src/runtime/docker-engine.ts'
import { demuxStream, parseFrames } from '../../src/runtime/docker-logs.ts'
import { TEST_IMAGE, removeAllocContainers, requireDocker } from '../helpers/docker.ts'
import { uniqueId } from '../helpers/tasks.ts'

const engine = new DockerEngine()
test.after.always(() => engine.close())

/** A started busybox container (sleeping) labelled with a unique alloc id, removed when the test ends. */
async function container(t: ExecutionContext, cmd = ['sleep', '300']): Promise<string> {
  const docker = await requireDocker()
  const allocId = uniqueId('engine')
  t.teardown(() => removeAllocContainers(docker, allocId))
  const id = await engine.createContainer({
    name: `shoal-engine-test-${allocId}`,
    Image: TEST_IMAGE,
    Cmd: cmd,
    Labels: { 'shoal.alloc': allocId },
    HostConfig: { Init: true },
  })
  await engine.startContainer(id)
  return id
}

test('archive stat: a symlink, a file, and 404 for a missing path', async (t) => {
  const id = await container(t)
  const sh = await engine.statPath(id, '/bin/sh')
  t.truthy(sh)
  t.is(Math.floor(sh!.mode / 2 ** 27) % 2, 1, 'symlink bit')
  t.regex(sh!.linkTarget, /busybox$/)
  const busybox = await engine.statPath(id, '/bin/busybox')
  t.is(busybox!.mode & 0o111, 0o111)
  const missing = await t.throwsAsync(engine.statPath(id, '/no/such/file'), { instanceOf: DockerEngineError })
  t.is(missing?.statusCode, 404)
})

test('exec: stdin through the hijacked connection, stdout and stderr apart, the exit code', async (t) => {
  const id = await container(t)
  const exec = await engine.createExec(id, {
    Cmd: ['sh', '-c', 'tr a-z A-Z; echo to-stderr >&2; exit 7'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  })
  const socket = await engine.startExec(exec, { tty: false })
  let out = ''
  let err = ''
  demuxStream(socket, (b) => (out += b), (b) => (err += b))
  socket.end('hello through stdin\n')
  await new Promise((resolve) => socket.once('close', resolve))
  t.is(out, 'HELLO THROUGH STDIN\n')
  t.is(err, 'to-stderr\n')
  let info = await engine.inspectExec(exec)
  for (let i = 0; i < 50 && info.Running; i++) {
    await new Promise((r) => setTimeout(r, 20))
    info = await engine.inspectExec(exec)
  }
  t.is(info.ExitCode, 7)
})

test('exec with a TTY: raw output, and the size set by resize', async (t) => {
  const id = await container(t)
  const exec = await engine.createExec(id, { Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true })
  const socket = await engine.startExec(exec, { tty: true })
  await engine.resizeExec(exec, 33, 101)
  let out = ''
  socket.on('data', (b: Buffer) => (out += b))
  socket.write('stty size; exit 0\n')
  await new Promise((resolve) => socket.once('close', resolve))
  t.regex(out, /\b33 101\b/)
})

test('logs are multiplexed frames; stats has a reading; a stopped container waits and is removed', async (t) => {
  const id = await container(t, ['sh', '-c', 'echo out; echo err >&2; sleep 300'])
  let frames: ReturnType<typeof parseFrames> = []
  for (let i = 0; i < 50 && frames.length < 2; i++) {
    frames = parseFrames(await engine.containerLogs(id, { stdout: true, stderr: true }))
    if (frames.length < 2) await new Promise((r) => setTimeout(r, 50))
  }
  t.deepEqual(frames.map((f) => [f.stream, f.payload.toString()]).sort(), [[1, 'out\n'], [2, 'err\n']])
  const stats = await engine.containerStats(id)
  t.true(Date.parse(stats.read) > 0)
  await engine.stopContainer(id, 1)
  const again = await t.throwsAsync(engine.stopContainer(id, 1), { instanceOf: DockerEngineError })
  t.is(again?.statusCode, 304)
  const waited = await engine.waitContainer(id, 'not-running')
  t.is(typeof waited.StatusCode, 'number')
  t.false((await engine.inspectContainer(id)).State.Running)
  await engine.removeContainer(id, { force: true, v: true })
  const gone = await t.throwsAsync(engine.inspectContainer(id), { instanceOf: DockerEngineError })
  t.is(gone?.statusCode, 404)
  t.regex(gone!.message, /No such container/)
})

test('a pull of an image no registry has fails with the engine message', async (t) => {
  await requireDocker()
  const err = await t.throwsAsync(engine.pullImage('shoal-test/does-not-exist:1'), { instanceOf: DockerEngineError })
  t.truthy(err?.message)
  t.notRegex(err!.message, /HTTP code/)
  const inspect = await t.throwsAsync(engine.inspectImage('shoal-test/does-not-exist:1'), { instanceOf: DockerEngineError })
  t.is(inspect?.statusCode, 404)
  t.regex(inspect!.message, /No such image/i)
})
