import { Args, Flags } from '@oclif/core'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { ApiError } from '../../api/client.ts'
import { EXEC_UPGRADE, FRAME, frame, FrameReader } from '../../api/exec-session.ts'
import { fail, writeError } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'

/** One line of the exec answer. */
interface ExecLine {
  stdout?: string
  stderr?: string
  exitCode?: number
  timedOut?: boolean
  error?: string
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export default class AllocExec extends ApiCommand {
  static override description = 'Run a command inside a running task of an allocation; exits with the command\'s exit code'
  static override examples = [
    '<%= config.bin %> alloc exec 3f2a9c1b -- ls -l /www',
    '<%= config.bin %> alloc exec 3f2a9c1b httpd -- sh -c \'echo hi; exit 3\'',
    'echo data | <%= config.bin %> alloc exec -i 3f2a9c1b -- wc -c',
    '<%= config.bin %> alloc exec -i -t 3f2a9c1b -- sh',
  ]
  static override strict = false
  static override usage = 'alloc exec ALLOC [TASK] -- COMMAND [ARGS...]'
  static override args = {
    alloc: Args.string({ description: 'allocation id or unique prefix', required: true }),
    task: Args.string({ description: 'task name (needed when the group has several tasks)' }),
  }
  static override flags = {
    stdin: Flags.boolean({ char: 'i', description: 'send this process\'s standard input to the command (read to its end first, unless -t)', default: false }),
    tty: Flags.boolean({ char: 't', description: 'run the command on a terminal: live input (with -i), raw mode, window size passed on', default: false }),
    timeout: Flags.string({ description: 'give up after this long, like "30s" (exit code 124)' }),
  }

  async run(): Promise<void> {
    const dash = this.argv.indexOf('--')
    if (dash < 0 || dash === this.argv.length - 1) {
      fail(this, 'give the command after "--", like: shoal alloc exec ALLOC [TASK] -- ls -l')
    }
    const command = this.argv.slice(dash + 1)
    const { args, flags } = await this.parse(AllocExec, this.argv.slice(0, dash))
    if (flags.tty) {
      if (flags.timeout) fail(this, '--timeout: not available with -t (end the session yourself)')
      if (flags.stdin && !process.stdin.isTTY) fail(this, '-t: standard input is not a terminal; leave out -t to pipe input (-i)')
      return this.session(args.alloc, args.task, command, flags.stdin, flags.address)
    }
    const body: Record<string, unknown> = { command }
    if (args.task) body.task = args.task
    if (flags.timeout) body.timeout = flags.timeout
    if (flags.stdin) body.stdin = (await readStdin()).toString('base64')

    const api = this.api(flags.address)
    const abort = new AbortController()
    process.once('SIGINT', () => abort.abort())
    let res: Response
    try {
      res = await fetch(`${api.base}/v1/client/allocation/${encodeURIComponent(args.alloc)}/exec`, {
        method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: abort.signal,
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      throw new ApiError(0, `cannot reach the Shoal agent at ${api.base} (${cause?.code ?? cause?.message ?? (err as Error).message}); is "shoal agent" running? Set --address or SHOAL_ADDR`)
    }
    if (!res.ok) {
      const text = await res.text()
      let e: { error?: string; field?: string; errors?: { field: string; message: string }[] } = {}
      try {
        e = JSON.parse(text) as typeof e
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, e.error ?? (text || res.statusText), e.field, e.errors ?? [], e as Record<string, unknown>)
    }
    let exitCode: number | undefined
    let pending = ''
    const handle = (text: string) => {
      if (!text.trim()) return
      const l = JSON.parse(text) as ExecLine
      if (l.stdout !== undefined) process.stdout.write(Buffer.from(l.stdout, 'base64'))
      if (l.stderr !== undefined) process.stderr.write(Buffer.from(l.stderr, 'base64'))
      if (l.error !== undefined) fail(this, l.error)
      if (l.timedOut) {
        writeError(`the command did not finish within ${flags.timeout}`)
        exitCode = 124
      } else if (l.exitCode !== undefined) {
        exitCode = l.exitCode
      }
    }
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body ?? []) {
        pending += decoder.decode(chunk, { stream: true })
        let nl: number
        while ((nl = pending.indexOf('\n')) >= 0) {
          handle(pending.slice(0, nl))
          pending = pending.slice(nl + 1)
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
      fail(this, 'interrupted', 130)
    }
    handle(pending)
    if (exitCode === undefined) fail(this, 'the agent ended the answer without an exit code')
    if (exitCode !== 0) this.exit(exitCode < 0 ? 1 : exitCode)
  }

  /** An interactive session over an upgraded connection (see src/api/exec-session.ts). */
  private async session(alloc: string, task: string | undefined, command: string[], withStdin: boolean, address: string): Promise<void> {
    const api = this.api(address)
    const size = () => ({ rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 })
    const q = new URLSearchParams({ command: JSON.stringify(command), tty: '1', stdin: withStdin ? '1' : '0', ...Object.fromEntries(Object.entries(size()).map(([k, v]) => [k, String(v)])) })
    if (task) q.set('task', task)
    const socket = await new Promise<Duplex>((resolve, reject) => {
      const req = http.request(`${api.base}/v1/client/allocation/${encodeURIComponent(alloc)}/exec/session?${q}`, { headers: { connection: 'Upgrade', upgrade: EXEC_UPGRADE } })
      req.on('upgrade', (_res, sock, head) => {
        if (head.length) sock.unshift(head)
        resolve(sock)
      })
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          let e: { error?: string; field?: string } = {}
          try {
            e = JSON.parse(text) as typeof e
          } catch {
            // not JSON
          }
          reject(new ApiError(res.statusCode ?? 0, e.error ?? (text || String(res.statusCode)), e.field))
        })
      })
      req.on('error', (err) => reject(new ApiError(0, `cannot reach the Shoal agent at ${api.base} (${(err as NodeJS.ErrnoException).code ?? err.message}); is "shoal agent" running? Set --address or SHOAL_ADDR`)))
      req.end()
    })
    const stdin = process.stdin
    const raw = withStdin && stdin.isTTY
    if (raw) stdin.setRawMode(true)
    const onResize = () => socket.write(frame(FRAME.resize, JSON.stringify(size())))
    process.stdout.on('resize', onResize)
    const onInput = (c: Buffer) => socket.write(frame(FRAME.stdin, c))
    const onEnd = () => socket.write(frame(FRAME.stdinEnd))
    if (withStdin) {
      stdin.on('data', onInput)
      stdin.once('end', onEnd)
    }
    let result: { exitCode?: number; error?: string } | undefined
    try {
      result = await new Promise((resolve, reject) => {
        const reader = new FrameReader()
        let exit: { exitCode?: number; error?: string } | undefined
        socket.on('data', (chunk: Buffer) => {
          for (const f of reader.push(chunk)) {
            if (f.type === FRAME.stdout) process.stdout.write(f.payload)
            else if (f.type === FRAME.stderr) process.stderr.write(f.payload)
            else if (f.type === FRAME.exit) exit = JSON.parse(f.payload.toString()) as typeof exit
          }
        })
        socket.once('close', () => resolve(exit))
        socket.once('error', reject)
      })
    } finally {
      process.stdout.off('resize', onResize)
      if (withStdin) {
        stdin.off('data', onInput)
        stdin.off('end', onEnd)
        stdin.pause()
      }
      if (raw) stdin.setRawMode(false)
    }
    if (!result) fail(this, 'the session ended without an exit code (connection lost)')
    if (result.error !== undefined) fail(this, result.error)
    const code = result.exitCode ?? -1
    if (code !== 0) this.exit(code < 0 ? 1 : code)
  }
}
