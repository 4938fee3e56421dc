// The kernel log as a second witness of OOM kills. Docker's State.OOMKilled relies on
// an OOM event from containerd that is sometimes lost (seen with engine 20.10 on a
// cgroup v1 host: about one container in four), while the kernel always logs
//   oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/docker/<id>,task_memcg=...
// Reading /dev/kmsg needs root (or CAP_SYSLOG) on most hosts; callers fall back to
// what the engine says when it is unreadable.
import { closeSync, constants, openSync, readSync } from 'node:fs'

const RECORD_MAX = 8192

/**
 * Whether the kernel log records an OOM kill of a task in a memory cgroup whose path
 * contains `cgroupId` (a container id); undefined when the log cannot be read. A false
 * answer is weak: the ring buffer may have dropped the record.
 */
export function kernelLogShowsOomKill(cgroupId: string, kmsgPath = '/dev/kmsg'): boolean | undefined {
  if (cgroupId.length < 12) return undefined
  let fd: number
  try {
    fd = openSync(kmsgPath, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  const buf = Buffer.allocUnsafe(RECORD_MAX)
  try {
    // Each read returns one record, oldest first; EAGAIN at the end of the buffer.
    for (let records = 0; records < 1_000_000; records++) {
      let n: number
      try {
        n = readSync(fd, buf, 0, RECORD_MAX, null)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EPIPE') continue // records overwritten while reading: go on
        if (code === 'EAGAIN') return false
        return undefined
      }
      if (n <= 0) return false
      const record = buf.toString('utf8', 0, n)
      // Kernels >= 4.19: "oom-kill:...,oom_memcg=...,task_memcg=/docker/<id>,...";
      // older ones: "Task in /docker/<id> killed as a result of limit of ...".
      if (!record.includes(cgroupId)) continue
      if (record.includes('oom-kill:') || record.includes('killed as a result of limit of')) return true
    }
    return false
  } finally {
    closeSync(fd)
  }
}
