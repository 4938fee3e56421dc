// Child process run inside another network namespace (`nsenter --net=...`):
// listens on 127.0.0.1 at each port given on the command line and hands the
// listening sockets to the parent over the IPC channel, then exits. Sockets
// keep the namespace they were made in, so the parent accepts connections
// made to localhost inside a container.
import net from 'node:net'

const ports = (process.argv[2] ?? '').split(',').filter(Boolean).map(Number)
const send = (message: unknown, handle?: net.Server) => new Promise<void>((resolve) => {
  if (!process.send) process.exit(2)
  if (handle) process.send(message, handle, () => resolve())
  else process.send(message, () => resolve())
})

for (const port of ports) {
  const server = net.createServer()
  const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', resolve)
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(null))
  })
  if (error) await send({ port, error: error.code === 'EADDRINUSE' ? 'already in use in the task\'s network namespace' : error.message })
  else await send({ port }, server)
}
process.exit(0)
