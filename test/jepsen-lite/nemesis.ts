// The nemesis: a schedule of faults derived from the seed alone (planSchedule is
// pure), then executed against the real cluster. Faults are bounded (2–8 s), one
// fault (or one combination) at a time with quiet gaps between, every start and
// heal logged with its time; everything is healed at the end.
//
// Targets are drawn at plan time as a permutation of the agents; "leader" targets
// are resolved when the fault starts (the agent that believes itself leader with
// the highest term).
import type { Agent, Cluster } from './cluster.ts'
import { Random } from './prng.ts'

export type NemesisFamily = 'partition' | 'kill' | 'pause'
export const FAMILIES: readonly NemesisFamily[] = ['partition', 'kill', 'pause']

export type FaultKind =
  | 'partition-halves' // random split: 1–2 agents | the rest
  | 'partition-leader' // the leader alone | the rest
  | 'partition-ring' // majorities ring: each agent sees its two ring neighbours only
  | 'partition-bridge' // two pairs that cannot talk, one bridge agent seeing both
  | 'kill' // kill -9 1–2 random agents, restart at heal
  | 'kill-leader'
  | 'pause' // SIGSTOP 1–2 random agents, SIGCONT at heal
  | 'pause-leader'

const KINDS: Record<NemesisFamily, FaultKind[]> = {
  partition: ['partition-halves', 'partition-leader', 'partition-ring', 'partition-bridge'],
  kill: ['kill', 'kill-leader'],
  pause: ['pause', 'pause-leader'],
}

export const familyOf = (k: FaultKind): NemesisFamily => (k.startsWith('partition') ? 'partition' : k.startsWith('kill') ? 'kill' : 'pause')

export interface FaultSpec {
  kind: FaultKind
  /** A permutation of agent indexes: targets are taken from its front. */
  order: number[]
  /** How many agents (kill, pause, partition-halves minority). */
  count: number
}

export interface PlannedFault {
  id: number
  /** Seconds from the start of the run. */
  at: number
  duration: number
  /** One fault, or two of different families at once (a combination). */
  faults: FaultSpec[]
}

export interface ScheduleOptions {
  seed: number
  /** Seconds of faults; the last one is healed by then. */
  seconds: number
  families: readonly NemesisFamily[]
  agents: number
  minFault?: number
  maxFault?: number
  /** Quiet time before the first fault and between faults. */
  minGap?: number
  maxGap?: number
  /** Chance that a fault is a combination (when 2+ families are enabled). */
  comboRate?: number
}

export function parseFamilies(spec: string): NemesisFamily[] {
  const out = new Set<NemesisFamily>()
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'all') FAMILIES.forEach((f) => out.add(f))
    else if (raw === 'none') continue
    else if ((FAMILIES as readonly string[]).includes(raw)) out.add(raw as NemesisFamily)
    else throw new Error(`--nemesis: unknown "${raw}" (use partition, kill, pause, all or none, comma-separated)`)
  }
  return [...out]
}

/** The whole fault schedule of a run, from its seed. */
export function planSchedule(o: ScheduleOptions): PlannedFault[] {
  const rand = new Random(o.seed).fork('nemesis')
  const [minFault, maxFault] = [o.minFault ?? 2, o.maxFault ?? 8]
  const [minGap, maxGap] = [o.minGap ?? 1, o.maxGap ?? 4]
  const comboRate = o.comboRate ?? 0.25
  const out: PlannedFault[] = []
  if (o.families.length === 0) return out
  const spec = (family: NemesisFamily): FaultSpec => {
    const kind = rand.pick(KINDS[family])
    const order = rand.shuffle([...Array(o.agents).keys()])
    const count = kind === 'kill' || kind === 'pause' || kind === 'partition-halves' ? rand.int(1, Math.max(1, Math.floor((o.agents - 1) / 2))) : 1
    return { kind, order, count }
  }
  let t = rand.between(minGap, maxGap) + 1
  for (let id = 0; ; id++) {
    const duration = Math.round(rand.between(minFault, maxFault) * 10) / 10
    if (t + duration > o.seconds) break
    const first = rand.pick(o.families)
    const faults = [spec(first)]
    if (o.families.length > 1 && rand.next() < comboRate) faults.push(spec(rand.pick(o.families.filter((f) => f !== first))))
    out.push({ id, at: Math.round(t * 10) / 10, duration, faults })
    t += duration + rand.between(minGap, maxGap)
  }
  return out
}

export function describeFault(p: PlannedFault): string {
  return `#${p.id} at ${p.at.toFixed(1)}s for ${p.duration.toFixed(1)}s: ${p.faults.map((f) => f.kind + (f.count > 1 ? `×${f.count}` : '')).join(' + ')}`
}

// ---- execution ----------------------------------------------------------------

export interface NemesisEvent {
  /** performance.now() */
  time: number
  wall: string
  fault: number
  phase: 'start' | 'heal' | 'final-heal'
  kind: string
  detail: string
}

export interface NemesisLog {
  events: NemesisEvent[]
  injected: number
  byKind: Record<string, number>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Runs the schedule (times relative to `t0`, a performance.now()); resolves after the final heal. */
export async function runNemesis(cluster: Cluster, plan: readonly PlannedFault[], opts: { t0: number; log: (line: string) => void; stop?: () => boolean }): Promise<NemesisLog> {
  const log: NemesisLog = { events: [], injected: 0, byKind: {} }
  const agents = cluster.agents
  const record = (fault: number, phase: NemesisEvent['phase'], kind: string, detail: string) => {
    const e: NemesisEvent = { time: performance.now(), wall: new Date().toISOString(), fault, phase, kind, detail }
    log.events.push(e)
    opts.log(`nemesis ${phase} #${fault} ${kind}: ${detail}`)
    for (const a of agents) a.note(`nemesis ${phase} #${fault} ${kind}: ${detail}`)
  }
  const names = (xs: Agent[]) => xs.map((a) => a.name).join(',')
  const hostOf = (a: Agent) => a.spec.host

  for (const p of plan) {
    const wait = opts.t0 + p.at * 1000 - performance.now()
    if (wait > 0) await sleep(wait)
    if (opts.stop?.()) break
    const heals: (() => Promise<string> | string)[] = []
    const busy = new Set<Agent>()
    for (const f of p.faults) {
      const pickFrom = (n: number) => f.order.map((i) => agents[i]!).filter((a) => !busy.has(a)).slice(0, n)
      let leader: Agent | undefined
      if (f.kind.endsWith('-leader')) {
        // Right after a heal the cluster may still be electing: give it a few seconds.
        const until = performance.now() + 4_000
        while (!(leader = await cluster.leader()) && performance.now() < until) await sleep(250)
        if (!leader || busy.has(leader)) {
          const fallback = pickFrom(1)[0]!
          record(p.id, 'start', f.kind, `no leader known${leader ? ' (already targeted)' : ''}; targeting ${fallback.name}`)
          leader = fallback
        }
      }
      switch (f.kind) {
        case 'partition-halves':
        case 'partition-leader': {
          const minority = f.kind === 'partition-leader' ? [leader!] : f.order.slice(0, f.count).map((i) => agents[i]!)
          const majority = agents.filter((a) => !minority.includes(a))
          cluster.net.cut(minority.map(hostOf), majority.map(hostOf))
          record(p.id, 'start', f.kind, `${names(minority)} | ${names(majority)}`)
          break
        }
        case 'partition-ring': {
          // Ring order; each agent keeps links to its neighbours at distance 1, loses those at distance 2.
          const ring = f.order.map((i) => agents[i]!)
          const cuts: string[] = []
          for (let i = 0; i < ring.length; i++) {
            for (let d = 2; d <= Math.floor(ring.length / 2); d++) {
              const a = ring[i]!
              const b = ring[(i + d) % ring.length]!
              if (d * 2 === ring.length && i >= ring.length / 2) continue
              cluster.net.cut([hostOf(a)], [hostOf(b)])
              cuts.push(`${a.name}-x-${b.name}`)
            }
          }
          record(p.id, 'start', f.kind, `ring ${names(ring)}; cut ${cuts.join(' ')}`)
          break
        }
        case 'partition-bridge': {
          const ring = f.order.map((i) => agents[i]!)
          const half = Math.floor((ring.length - 1) / 2)
          const left = ring.slice(0, half)
          const bridge = ring[half]!
          const right = ring.slice(half + 1)
          cluster.net.cut(left.map(hostOf), right.map(hostOf))
          record(p.id, 'start', f.kind, `${names(left)} | bridge ${bridge.name} | ${names(right)}`)
          break
        }
        case 'kill':
        case 'kill-leader': {
          const victims = f.kind === 'kill-leader' ? [leader!] : pickFrom(f.count)
          for (const v of victims) busy.add(v)
          await Promise.all(victims.map((v) => v.kill('SIGKILL')))
          record(p.id, 'start', f.kind, `kill -9 ${names(victims)}`)
          heals.push(() => {
            for (const v of victims) if (!v.alive) v.spawn()
            return `restart ${names(victims)}`
          })
          continue
        }
        case 'pause':
        case 'pause-leader': {
          const victims = (f.kind === 'pause-leader' ? [leader!] : pickFrom(f.count)).filter((v) => v.alive)
          for (const v of victims) {
            busy.add(v)
            v.pause()
          }
          record(p.id, 'start', f.kind, `SIGSTOP ${names(victims)}`)
          heals.push(() => {
            for (const v of victims) v.resume()
            return `SIGCONT ${names(victims)}`
          })
          continue
        }
      }
      heals.push(() => {
        cluster.net.heal()
        return 'partition healed'
      })
    }
    log.injected++
    for (const f of p.faults) log.byKind[f.kind] = (log.byKind[f.kind] ?? 0) + 1
    await sleep(p.duration * 1000)
    const done: string[] = []
    for (const h of heals) done.push(await h())
    record(p.id, 'heal', p.faults.map((f) => f.kind).join('+'), done.join('; '))
  }
  const final = await cluster.healAll()
  record(-1, 'final-heal', 'all', final.length ? final.join('; ') : 'nothing left to heal')
  return log
}
