import type { Logger } from './leader.ts'

export function consoleLogger(component: string, out: NodeJS.WritableStream = process.stdout): Logger {
  const line = (level: string, msg: string) => out.write(`${new Date().toISOString()} [${level}] ${component}: ${msg}\n`)
  return { info: (m) => line('INFO', m), warn: (m) => line('WARN', m) }
}
