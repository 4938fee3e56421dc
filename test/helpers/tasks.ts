// Builders of driver start specs with unique ids, for the driver integration tests.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import type { TaskStartSpec } from '../../src/runtime/driver.ts'
import type { AllocatedPort, Task } from '../../src/structs/index.ts'

export function uniqueId(prefix = 'test'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

/** A fresh temporary directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'shoal-driver-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A TCP port nobody listens on right now on `host`. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

interface SpecOptions {
  allocId?: string
  nodeId?: string
  allocDir?: string
  env?: Record<string, string>
  ports?: AllocatedPort[]
  cpu?: number
  memoryMB?: number
}

export function dockerSpec(
  config: { image: string; command?: string; args?: string[]; ports?: string[] },
  options: SpecOptions & { name?: string } = {},
): TaskStartSpec {
  const task: Task = {
    name: options.name ?? 'web',
    driver: 'docker',
    config: { image: config.image, command: config.command, args: config.args ?? [], ports: config.ports ?? [] },
    env: {},
    resources: { cpu: options.cpu ?? 100, memoryMB: options.memoryMB ?? 64 },
    killTimeoutMs: 5000,
  }
  return baseSpec(task, options)
}

export function execSpec(
  config: { command: string; args?: string[] },
  options: SpecOptions & { name?: string } = {},
): TaskStartSpec {
  const task: Task = {
    name: options.name ?? 'worker',
    driver: 'exec',
    config: { command: config.command, args: config.args ?? [] },
    env: {},
    resources: { cpu: options.cpu ?? 100, memoryMB: options.memoryMB ?? 64 },
    killTimeoutMs: 5000,
  }
  return baseSpec(task, options)
}

function baseSpec(task: Task, options: SpecOptions): TaskStartSpec {
  return {
    allocId: options.allocId ?? uniqueId('alloc'),
    jobId: 'test-job',
    group: 'test-group',
    nodeId: options.nodeId ?? 'test-node',
    task,
    ports: options.ports ?? [],
    env: options.env ?? {},
    allocDir: options.allocDir ?? tmpdir(),
  }
}

/** Reads a stream to its end as UTF-8 text. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
  return text
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
