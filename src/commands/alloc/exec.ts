import { Args, Flags } from '@oclif/core'
import { ApiError } from '../../api/client.ts'
import { ApiCommand, fail } from '../base.ts'

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
  ]
  static override strict = false
  static override usage = 'alloc exec ALLOC [TASK] -- COMMAND [ARGS...]'
  static override args = {
    alloc: Args.string({ description: 'allocation id or unique prefix', required: true }),
    task: Args.string({ description: 'task name (needed when the group has several tasks)' }),
  }
  static override flags = {
    stdin: Flags.boolean({ char: 'i', description: 'send this process\'s standard input (read to its end) to the command', default: false }),
    timeout: Flags.string({ description: 'give up after this long, like "30s" (exit code 124)' }),
  }

  async run(): Promise<void> {
    const dash = this.argv.indexOf('--')
    if (dash < 0 || dash === this.argv.length - 1) {
      fail(this, 'give the command after "--", like: shoal alloc exec ALLOC [TASK] -- ls -l')
    }
    const command = this.argv.slice(dash + 1)
    const { args, flags } = await this.parse(AllocExec, this.argv.slice(0, dash))
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
        process.stderr.write(`Error: the command did not finish within ${flags.timeout}\n`)
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
}
