// The placement benchmark's workload: a seeded cluster of simulated nodes
// (varied sizes, racks, zones, classes, kernels; no containers behind them)
// and service jobs with constraints. Same seed, same cluster and jobs.
import type { NewNode } from '../../src/fsm/commands.ts'
import type { Constraint, JobSpec, TaskGroup } from '../../src/structs/index.ts'

export type Rand = () => number

export function mulberry32(seed: number): Rand {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

export const CLASSES = ['general', 'compute', 'memory', 'storage'] as const
export const ZONES = ['z1', 'z2', 'z3'] as const
/** Nodes per rack: 5,000 nodes make 50 racks. */
export const NODES_PER_RACK = 100

const SIZES = [
  { cpu: 4_000, memoryMB: 8_192, cores: 4 },
  { cpu: 8_000, memoryMB: 16_384, cores: 8 },
  { cpu: 16_000, memoryMB: 32_768, cores: 16 },
  { cpu: 32_000, memoryMB: 65_536, cores: 32 },
]

/** `n` ready nodes (1% down, 1% ineligible, 3% without docker), deterministic for a seed. */
export function makeNodes(n: number, seed: number): NewNode[] {
  const r = mulberry32(seed)
  const out: NewNode[] = []
  for (let i = 0; i < n; i++) {
    const size = pick(r, SIZES)
    const rack = Math.floor(i / NODES_PER_RACK)
    const features = ['ssd', 'gpu', 'fast'].filter(() => r() < 0.4)
    const roll = r()
    const name = `sim-${String(i).padStart(5, '0')}`
    out.push({
      // Ids as a hash-like string, so the id order is not the name order.
      id: `${(Math.floor(r() * 0xffffffff) >>> 0).toString(16).padStart(8, '0')}-${String(i).padStart(5, '0')}`,
      name,
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      http: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:4680`,
      status: roll < 0.01 ? 'down' : 'ready',
      statusDescription: '',
      eligible: !(roll >= 0.01 && roll < 0.02),
      drivers: roll >= 0.02 && roll < 0.05 ? ['exec'] : ['docker', 'exec'],
      resources: { cpu: size.cpu, memoryMB: size.memoryMB },
      attributes: {
        'os.name': 'linux',
        'cpu.arch': r() < 0.8 ? 'amd64' : 'arm64',
        'cpu.numcores': String(size.cores),
        'kernel.version': pick(r, ['5.4.0-150-generic', '5.15.0-91-generic', '6.1.0-18-amd64', '6.8.0-1017-aws']),
      },
      meta: {
        rack: `rack-${String(rack).padStart(3, '0')}`,
        zone: ZONES[rack % ZONES.length]!,
        class: pick(r, CLASSES),
        ...(features.length ? { features: features.join(',') } : {}),
      },
      portRange: { min: 20_000, max: 32_000 },
    })
  }
  return out
}

function groupOf(name: string, count: number, cpu: number, memoryMB: number, constraints: Constraint[]): TaskGroup {
  return {
    name, count,
    ports: [{ label: 'http', to: 8080 }],
    restart: { attempts: 2, intervalMs: 60_000, delayMs: 1_000, mode: 'fail' },
    tasks: [{
      name: 'main', driver: 'docker', env: {}, killTimeoutMs: 5_000,
      config: { image: 'registry.local/app:1', args: [], ports: ['http'] },
      resources: { cpu, memoryMB },
    }],
    ...(constraints.length ? { constraints } : {}),
  }
}

/** What each job asks for: a constraint mix over the operators (one distinct_property, one regexp, ...). */
const JOB_SHAPES: { what: string; cpu: number; memoryMB: number; constraints: (count: number, racks: number) => Constraint[] }[] = [
  { what: '${meta.class} = general', cpu: 250, memoryMB: 256, constraints: () => [{ attribute: '${meta.class}', operator: '=', value: 'general' }] },
  {
    what: 'distinct_property ${meta.rack} (limit ⌈count/racks⌉ + 1)', cpu: 200, memoryMB: 256,
    constraints: (count, racks) => [{ attribute: '${meta.rack}', operator: 'distinct_property', value: String(Math.ceil(count / racks) + 1) }],
  },
  { what: '${attr.kernel.version} regexp ^(5\\.15|6\\.)', cpu: 300, memoryMB: 512, constraints: () => [{ attribute: '${attr.kernel.version}', operator: 'regexp', value: '^(5\\.15|6\\.)' }] },
  { what: '${meta.class} = compute, ${attr.cpu.numcores} >= 8', cpu: 500, memoryMB: 512, constraints: () => [{ attribute: '${meta.class}', operator: '=', value: 'compute' }, { attribute: '${attr.cpu.numcores}', operator: '>=', value: '8' }] },
  { what: '${meta.zone} != z3', cpu: 100, memoryMB: 128, constraints: () => [{ attribute: '${meta.zone}', operator: '!=', value: 'z3' }] },
  { what: '${attr.kernel.version} version >= 5.10', cpu: 150, memoryMB: 256, constraints: () => [{ attribute: '${attr.kernel.version}', operator: 'version', value: '>= 5.10' }] },
  { what: '${meta.features} set_contains ssd', cpu: 200, memoryMB: 1_024, constraints: () => [{ attribute: '${meta.features}', operator: 'set_contains', value: 'ssd' }] },
  { what: 'distinct_hosts', cpu: 250, memoryMB: 512, constraints: () => [{ attribute: '', operator: 'distinct_hosts', value: 'true' }] },
  { what: '${meta.class} = memory, ${attr.cpu.arch} = amd64', cpu: 100, memoryMB: 2_048, constraints: () => [{ attribute: '${meta.class}', operator: '=', value: 'memory' }, { attribute: '${attr.cpu.arch}', operator: '=', value: 'amd64' }] },
  { what: 'no constraints', cpu: 100, memoryMB: 128, constraints: () => [] },
]

export interface BenchJob {
  spec: JobSpec
  what: string
}

/** `jobs` service jobs of one group of `count` allocations each; shapes repeat after ten. */
export function makeJobs(jobs: number, count: number, nodes: number): BenchJob[] {
  const racks = Math.max(1, Math.ceil(nodes / NODES_PER_RACK))
  return Array.from({ length: jobs }, (_, i) => {
    const shape = JOB_SHAPES[i % JOB_SHAPES.length]!
    const id = `bench-${String(i).padStart(2, '0')}`
    return {
      what: shape.what,
      spec: { id, type: 'service', priority: 50, groups: [groupOf('app', count, shape.cpu, shape.memoryMB, shape.constraints(count, racks))] },
    }
  })
}
