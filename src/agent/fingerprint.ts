// What this machine offers: resources, attributes and healthy drivers.
import { statfs } from 'node:fs/promises'
import os from 'node:os'
import type { NodeResources } from '../structs/index.ts'
import type { Driver } from '../runtime/driver.ts'

export interface Fingerprint {
  resources: NodeResources
  attributes: Record<string, string>
  drivers: string[]
}

export async function fingerprint(drivers: readonly Driver[], dataDir: string): Promise<Fingerprint> {
  const cpus = os.cpus()
  const mhz = cpus[0]?.speed || 1000
  const attributes: Record<string, string> = {
    'os.name': os.platform(),
    'kernel.version': os.release(),
    'cpu.arch': os.arch(),
    'cpu.numcores': String(cpus.length),
    'cpu.frequency': String(mhz),
    'unique.hostname': os.hostname(),
  }
  // Disk where allocations live (their directories and logs are under the data dir).
  const fs = await statfs(dataDir).catch(() => null)
  if (fs) {
    attributes['storage.bytestotal'] = String(fs.blocks * fs.bsize)
    attributes['storage.bytesfree'] = String(fs.bavail * fs.bsize)
  }
  const healthy: string[] = []
  for (const d of drivers) {
    const fp = await d.fingerprint().catch((err: Error) => ({ healthy: false, detail: err.message, attributes: {} }))
    attributes[`driver.${d.name}`] = fp.healthy ? '1' : '0'
    Object.assign(attributes, fp.attributes)
    if (fp.healthy) healthy.push(d.name)
  }
  return {
    resources: { cpu: cpus.length * mhz, memoryMB: Math.floor(os.totalmem() / 2 ** 20) },
    attributes,
    drivers: healthy,
  }
}
