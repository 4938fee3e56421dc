// Which protocols the docker driver publishes a port for: tcp unless the port
// names udp or tcp+udp. The engine's docker-proxy holds each published host
// port, so whether our own socket can bind it tells what was published.
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import test, { type ExecutionContext } from 'ava'
import { DockerDriver } from '../../src/runtime/docker.ts'
import type { AllocatedPort } from '../../src/structs/index.ts'
import { TEST_IMAGE, removeAllocContainers, requireDocker } from '../helpers/docker.ts'
import { dockerSpec, freePort, uniqueId } from '../helpers/tasks.ts'

const HOST = '127.0.0.1'
const driver = new DockerDriver()

/** Whether a socket of ours can bind the host port (false: something holds it). */
function canBind(proto: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = createSocket('udp4')
      s.once('error', () => resolve(false))
      s.bind(port, HOST, () => s.close(() => resolve(true)))
    } else {
      const s = createServer()
      s.once('error', () => resolve(false))
      s.listen(port, HOST, () => s.close(() => resolve(true)))
    }
  })
}

/** A container publishing one port with the given protocol; the engine's bindings and what our sockets can still bind. */
async function publish(t: ExecutionContext, protocol: AllocatedPort['protocol']) {
  const docker = await requireDocker()
  const allocId = uniqueId('ports')
  t.teardown(() => removeAllocContainers(docker, allocId))
  const value = await freePort(HOST)
  const port: AllocatedPort = { label: 'p', value, to: 8080, hostIp: HOST, ...(protocol ? { protocol } : {}) }
  const handle = await driver.start(dockerSpec({ image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], ports: ['p'] }, { allocId, ports: [port] }))
  t.teardown(() => driver.destroy(handle))
  const info = await docker.getContainer(handle.id).inspect()
  return {
    bindings: Object.keys(info.HostConfig.PortBindings ?? {}).sort(),
    tcpFree: await canBind('tcp', value),
    udpFree: await canBind('udp', value),
  }
}

test('a port without a protocol is published for tcp only', async (t) => {
  const r = await publish(t, undefined)
  t.deepEqual(r.bindings, ['8080/tcp'])
  t.false(r.tcpFree, 'the engine holds the tcp port')
  t.true(r.udpFree, 'no udp port published')
})

test('protocol udp publishes udp only', async (t) => {
  const r = await publish(t, 'udp')
  t.deepEqual(r.bindings, ['8080/udp'])
  t.true(r.tcpFree)
  t.false(r.udpFree)
})

test('protocol tcp+udp publishes both', async (t) => {
  const r = await publish(t, 'tcp+udp')
  t.deepEqual(r.bindings, ['8080/tcp', '8080/udp'])
  t.false(r.tcpFree)
  t.false(r.udpFree)
})
