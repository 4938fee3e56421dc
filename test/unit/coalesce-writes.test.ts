import test from 'ava'
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import { coalesceWrites } from '../../src/gossip/coalesce-writes.ts'

async function socketPair(t: { teardown: (f: () => void) => void }): Promise<{ client: Socket; server: Socket }> {
  const srv = createServer()
  srv.listen(0, '127.0.6.250')
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  const accepted = once(srv, 'connection')
  const client = connect({ host: '127.0.6.250', port, noDelay: true })
  await once(client, 'connect')
  const [server] = (await accepted) as [Socket]
  t.teardown(() => {
    client.destroy()
    server.destroy()
    srv.close()
  })
  return { client, server }
}

test('writes of one turn go out together, in order, once the turn ends; later turns too', async (t) => {
  const { client, server } = await socketPair(t)
  t.true(coalesceWrites(client))
  t.false(coalesceWrites(client), 'a second call changes nothing')
  const received: Buffer[] = []
  server.on('data', (d: Buffer) => received.push(d))
  const writev = client._writev!.bind(client)
  let batches = 0
  client._writev = (chunks, cb) => {
    batches++
    writev(chunks, cb)
  }
  client.write('a')
  client.write(Buffer.from('b'))
  await Promise.resolve()
  client.write('c') // a microtask of the same turn
  t.is(client.writableCorked, 1, 'held until the turn ends')
  await new Promise((r) => setImmediate(r))
  t.is(client.writableCorked, 0)
  t.is(batches, 1, 'one writev for the three writes')
  client.write('d')
  await new Promise((r) => setImmediate(r))
  client.end('e')
  await once(server, 'end')
  t.is(Buffer.concat(received).toString(), 'abcde')
})

test('a socket destroyed before the turn ends is left alone', async (t) => {
  const { client } = await socketPair(t)
  coalesceWrites(client)
  client.write('x')
  client.destroy()
  await new Promise((r) => setImmediate(r))
  t.true(client.destroyed)
})
