// Resource limits shared by the drivers.
import { cpus } from 'node:os'

/** CFS period of a hard CPU limit, in µs. */
export const CPU_PERIOD_US = 100_000

/** CFS quota (µs per period) for `mhz` of CPU, as Nomad: its share of one core's MHz; at least 1 ms. */
export function cpuQuota(mhz: number, mhzPerCore = cpus()[0]?.speed || 1000): number {
  return Math.max(1000, Math.round((mhz / mhzPerCore) * CPU_PERIOD_US))
}
