// Small synchronous readers of Linux /proc, for the exec driver.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export interface ProcStat {
  pid: number
  /** R, S, D, Z (zombie), X (dead), T, ... */
  state: string
  ppid: number
  pgrp: number
  session: number
  /** Start time in clock ticks since boot (field 22), as text: with the pid it names one process. */
  startTime: string
}

/** /proc/<pid>/stat, or undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is in parentheses and may itself contain ") ".
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  const rest = text.slice(close + 2).split(' ')
  return {
    pid,
    state: rest[0],
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    startTime: rest[19],
  }
}

let cachedBootId: string | undefined

/** Changes at every boot: a pid recorded before a reboot names nothing after it. */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      cachedBootId = ''
    }
  }
  return cachedBootId
}

/**
 * True while the process that was `pid` when it had start time `startTime` still runs
 * (zombies count as exited; a reused pid does not count).
 */
export function isRunning(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid)
  if (!stat || stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return false
  return stat.startTime === startTime
}

/** Pids of every live process in process group `pgid`. */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return members
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readProcStat(Number(entry))
    if (stat && stat.pgrp === pgid && stat.state !== 'Z') members.push(stat.pid)
  }
  return members
}

/** kill(2) that ignores "no such process". Negative pid: the whole process group. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/** The environment a process started with (/proc/<pid>/environ), or undefined. */
export function readEnviron(pid: number): Record<string, string> | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/environ`, 'utf8')
  } catch {
    return undefined
  }
  const env: Record<string, string> = {}
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=')
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

/** The working directory of a process, or undefined. */
export function readCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    return undefined
  }
}

/** utime + stime + cutime + cstime of a process, in clock ticks (USER_HZ); undefined when gone. */
export function readCpuTicks(pid: number): number | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // Fields 14-17 of stat(5); rest starts at field 3.
  return Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])
}

/** Resident memory of a process in bytes (VmRSS), 0 for kernel threads and zombies; undefined when gone. */
export function readRssBytes(pid: number): number | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text)
  return m ? Number(m[1]) * 1024 : 0
}

/** Clock ticks per second of /proc times; 100 on every Linux Shoal runs on. */
export const CLOCK_TICKS_PER_SECOND = 100
