// Validation and normalisation of a parsed job file into a JobSpec.
// Every problem found is reported, each with the dotted path of its field.

import {
  defaultReschedulePolicy,
  defaultUpdateStrategy,
  HEALTH_CHECK_MODES,
  type UpdateStrategy,
  DEFAULT_TASK_LOGS,
  type TaskLogs,
  AFFINITY_OPERATORS,
  CHECK_TYPES,
  CONSTRAINT_OPERATORS,
  DEPENDENCY_CONDITIONS,
  LIFECYCLE_HOOKS,
  isEphemeralTask,
  isEssentialTask,
  DRIVER_NAMES,
  DEFAULT_MIGRATE_POLICY,
  PORT_PROTOCOLS,
  type Affinity,
  type AffinityOperator,
  type CheckRestart,
  type Constraint,
  type ConstraintOperator,
  type DockerTaskConfig,
  type DriverName,
  type ExecTaskConfig,
  type JobSpec,
  type JobType,
  type MigratePolicy,
  type PortSpec,
  type Resources,
  type DelayFunction,
  type ReschedulePolicy,
  type RestartMode,
  type RestartPolicy,
  type Spread,
  type SpreadTarget,
  type Task,
  type TaskCheck,
  type TaskDependency,
  type TaskGroup,
  type TaskLifecycle,
  type VolumeMount,
} from '../structs/job.ts'
import {
  type ScalingPolicy,
  type ScalingTarget,
  SCALING_METRICS,
} from '../structs/scaling.ts'
import {
  BALANCE_MODES,
  PROXY_PROTOCOL_VERSIONS,
  PUBLISH_MODES,
  SERVICE_NAME_RE,
  type ServicePublish,
  type ServiceSpec,
  type Upstream,
} from '../structs/service.ts'
import {
  varPathProblem,
} from '../structs/variable.ts'
import { parseTarget, TARGET_FORMS, valueProblem } from '../scheduler/constraints.ts'
import { DURATION_HINT, formatDuration, tryParseDuration } from './duration.ts'
import { describe, formatPath, quoteList, suggest, type FieldError, type PathSegment } from './errors.ts'

export type SpecResult = { ok: true; spec: JobSpec } | { ok: false; errors: FieldError[] }

export const JOB_TYPES: readonly JobType[] = ['service', 'batch', 'system']
export const RESTART_MODES: readonly RestartMode[] = ['fail', 'delay']

export const DEFAULT_JOB_TYPE: JobType = 'service'
export const DEFAULT_PRIORITY = 50
export const DEFAULT_COUNT = 1
export const DEFAULT_RESOURCES: Readonly<Resources> = Object.freeze({ cpu: 100, memoryMB: 300 })
export const DEFAULT_KILL_TIMEOUT_MS = 5_000
export const MAX_NAME_LENGTH = 128

/** Nomad's defaults: batch jobs retry more, over a longer window. */
export function defaultRestartPolicy(type: JobType): RestartPolicy {
  return type === 'batch'
    ? { attempts: 3, intervalMs: 24 * 3_600_000, delayMs: 15_000, mode: 'fail' }
    : { attempts: 2, intervalMs: 30 * 60_000, delayMs: 15_000, mode: 'fail' }
}

const ROOT_FIELDS = ['job'] as const
const JOB_FIELDS = ['type', 'priority', 'reschedule', 'update', 'constraint', 'affinity', 'spread', 'group'] as const
const GROUP_FIELDS = ['count', 'network', 'restart', 'reschedule', 'update', 'migrate', 'constraint', 'affinity', 'spread', 'service', 'scaling', 'task'] as const
const UPDATE_FIELDS = ['max_parallel', 'min_healthy_time', 'healthy_deadline', 'progress_deadline', 'health_check',
  'auto_revert', 'canary', 'auto_promote', 'stagger'] as const
const SCALING_FIELDS = ['min', 'max', 'enabled', 'cooldown', 'evaluation_interval', 'scale_in_step', 'scale_out_step', 'policy'] as const
const MIGRATE_FIELDS = ['max_parallel', 'health_check', 'min_healthy_time', 'healthy_deadline'] as const
const RESCHEDULE_FIELDS = ['attempts', 'interval', 'delay', 'delay_function', 'max_delay', 'unlimited'] as const
export const DELAY_FUNCTIONS: readonly DelayFunction[] = ['constant', 'exponential', 'fibonacci']
const NETWORK_FIELDS = ['port'] as const
const PORT_FIELDS = ['to', 'static', 'protocol'] as const
const RESTART_FIELDS = ['attempts', 'interval', 'delay', 'mode'] as const
const TASK_FIELDS = ['driver', 'config', 'env', 'resources', 'kill_timeout', 'constraint', 'affinity', 'check', 'check_restart',
  'lifecycle', 'depends_on', 'essential', 'env_from_var', 'service', 'upstreams', 'logs'] as const
const SERVICE_FIELDS = ['name', 'port', 'tags', 'checks', 'publish'] as const
const PUBLISH_FIELDS = ['port', 'balance', 'proxy_protocol', 'mode'] as const
const UPSTREAM_FIELDS = ['service', 'local_port'] as const
const LOGS_FIELDS = ['max_files', 'max_file_size_mb'] as const
const LOGS_HINTS: Hints = { max_file_size: 'did you mean "max_file_size_mb"? the size is in MB' }
/** Bounds that keep a typo from filling a disk or rotating every few bytes. */
const MAX_LOG_FILES = 1000
const MAX_LOG_FILE_SIZE_MB = 100 * 1024
const LIFECYCLE_FIELDS = ['hook', 'sidecar'] as const
const DEPENDENCY_FIELDS = ['task', 'condition'] as const
const CHECK_FIELDS = ['type', 'port', 'path', 'expected_status', 'command', 'args', 'interval', 'timeout', 'retries', 'start_period'] as const
const CHECK_RESTART_FIELDS = ['limit', 'grace'] as const
const DOCKER_FIELDS = ['image', 'command', 'args', 'ports', 'volumes', 'cpu_hard_limit'] as const
const EXEC_FIELDS = ['command', 'args', 'cpu_hard_limit'] as const
const RESOURCE_FIELDS = ['cpu', 'memory', 'memory_max'] as const
const CONSTRAINT_FIELDS = ['attribute', 'operator', 'value'] as const
const AFFINITY_FIELDS = ['attribute', 'operator', 'value', 'weight'] as const
const SPREAD_FIELDS = ['attribute', 'weight', 'target'] as const
const TARGET_FIELDS = ['value', 'percent'] as const

export const DEFAULT_CHECK_INTERVAL_MS = 10_000
export const DEFAULT_CHECK_TIMEOUT_MS = 2_000
export const DEFAULT_CHECK_RETRIES = 3
export const DEFAULT_CHECK_RESTART: Readonly<CheckRestart> = Object.freeze({ limit: 3, graceMs: 1_000 })

/** Nomad autoscaler's defaults. */
export const DEFAULT_SCALING_COOLDOWN_MS = 5 * 60_000
export const DEFAULT_SCALING_INTERVAL_MS = 10_000
export const MIN_SCALING_INTERVAL_MS = 1_000
export const DEFAULT_SCALE_IN_STEP = 1

export const DEFAULT_AFFINITY_WEIGHT = 50
export const DEFAULT_SPREAD_WEIGHT = 50

type Hints = Readonly<Record<string, string>>

const inGroup = (key: string) => `"${key}" is a group setting; move it into a group block`
const inTask = (key: string) => `"${key}" is a task setting; move it into a task block`

const JOB_HINTS: Hints = {
  ...Object.fromEntries(GROUP_FIELDS.map((k) => [k, inGroup(k)])),
  ...Object.fromEntries(TASK_FIELDS.map((k) => [k, inTask(k)])),
  service: '"service" is a group or task setting; move it into a group or task block',
  services: '"service" is a group or task setting (an array of service blocks); move it into a group or task block',
}
const GROUP_HINTS: Hints = {
  ...Object.fromEntries(TASK_FIELDS.filter((k) => k !== 'service').map((k) => [k, inTask(k)])),
  services: 'the key is "service", an array of service blocks',
  port: 'ports are declared under network.port, like {"network": {"port": {"http": {"to": 80}}}}',
  ports: 'ports are declared under network.port, like {"network": {"port": {"http": {"to": 80}}}}',
}
const TASK_HINTS: Hints = {
  ...Object.fromEntries(DOCKER_FIELDS.map((k) => [k, `did you mean "config.${k}"? driver options go in config`])),
  ...Object.fromEntries(RESOURCE_FIELDS.map((k) => [k, `did you mean "resources.${k}"?`])),
  count: inGroup('count'),
  network: inGroup('network'),
  spread: '"spread" is a job or group setting; move it into the group block',
  restart: 'Shoal takes the restart policy at the group level; move it into the group block',
  services: 'the key is "service", an array of service blocks',
  upstream: 'the key is "upstreams", an array like [{"service": "db", "local_port": 5432}]',
}
const EXEC_HINTS: Hints = {
  image: '"image" is a docker driver option; the exec driver runs a command on the host',
  ports: 'exec tasks find their ports in the environment; "ports" is a docker driver option',
  volumes: 'exec tasks run on the host and see its files; "volumes" is a docker driver option',
}
const CONSTRAINT_HINTS: Hints = {
  weight: 'constraints are hard rules; for a weighted preference use an "affinity" block',
  l_target: 'Shoal calls it "attribute"',
  r_target: 'Shoal calls it "value"',
}
const AFFINITY_HINTS: Hints = { l_target: CONSTRAINT_HINTS.l_target!, r_target: CONSTRAINT_HINTS.r_target! }
const RESOURCE_HINTS: Hints = {
  cores: 'Shoal reserves CPU in MHz only; use "cpu"',
}

type Obj = Record<string, unknown>
type Path = readonly PathSegment[]

const NAME_RE = /^[A-Za-z0-9_-]+$/
const JOB_ID_RE = /^[A-Za-z0-9_.-]+$/

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isDriverName(v: string): v is DriverName {
  return (DRIVER_NAMES as readonly string[]).includes(v)
}

/** Own properties only: a key such as "constructor" must not reach Object.prototype. */
function own(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined
}

const KNOWN_DRIVERS = `known drivers: ${quoteList(DRIVER_NAMES)}`

/** Collects errors while walking one job file. */
class Checker {
  readonly errors: FieldError[] = []

  add(path: Path, message: string): void {
    this.errors.push({ field: formatPath(path), message })
  }

  /** The value as an object, or undefined (with an error) when it is anything else. */
  object(v: unknown, path: Path, expected = 'an object'): Obj | undefined {
    if (isObj(v)) return v
    this.add(path, `must be ${expected} (got ${describe(v)})`)
    return undefined
  }

  /** Reports each key of `o` not in `allowed`, with a hint or a likely spelling. */
  fields(o: Obj, path: Path, allowed: readonly string[], hints: Hints = {}): void {
    for (const key of Object.keys(o)) {
      if (allowed.includes(key)) continue
      const hint = Object.hasOwn(hints, key) ? hints[key] : undefined
      const guess = suggest(key, allowed)
      let message: string
      if (hint !== undefined) message = `unknown field (${hint})`
      else if (guess !== undefined) message = `unknown field (did you mean ${JSON.stringify(guess)}?)`
      else message = `unknown field (expected one of ${quoteList(allowed)})`
      this.add([...path, key], message)
    }
  }

  /** An optional integer field within [min, max]; undefined when absent or invalid. */
  integer(o: Obj, key: string, path: Path, min: number, max?: number): number | undefined {
    const v = own(o, key)
    if (v === undefined) return undefined
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && (max === undefined || v <= max)) return v
    const range = max === undefined ? `an integer ≥ ${min}` : `an integer between ${min} and ${max}`
    this.add([...path, key], `must be ${range} (got ${describe(v)})`)
    return undefined
  }

  /** An optional duration field in ms; undefined when absent or invalid. */
  duration(o: Obj, key: string, path: Path): number | undefined {
    const v = own(o, key)
    if (v === undefined) return undefined
    const ms = tryParseDuration(v)
    if (ms !== undefined) return ms
    const units = typeof v === 'string' ? ' with units ms, s, m, h' : ''
    this.add([...path, key], `${DURATION_HINT}${units} (got ${describe(v)})`)
    return undefined
  }

  /** An optional field that must be one of `allowed`; undefined when absent or invalid. */
  oneOf<T extends string>(o: Obj, key: string, path: Path, allowed: readonly T[]): T | undefined {
    const v = own(o, key)
    if (v === undefined) return undefined
    const hit = allowed.find((a) => a === v)
    if (hit !== undefined) return hit
    this.add([...path, key], `must be one of ${quoteList(allowed)} (got ${describe(v)})`)
    return undefined
  }

  /** An optional string field; when present it must be a non-blank string. */
  string(o: Obj, key: string, path: Path, required: boolean, emptyHint = ''): string | undefined {
    const v = own(o, key)
    if (v === undefined) {
      if (required) this.add([...path, key], 'is required')
      return undefined
    }
    if (typeof v !== 'string') {
      this.add([...path, key], `must be a string (got ${describe(v)})`)
      return undefined
    }
    if (v.trim() === '') {
      this.add([...path, key], `must not be empty${emptyHint}`)
      return undefined
    }
    return v
  }

  /** The value as an array, or undefined (with an error) when it is anything else. */
  array(v: unknown, path: Path, expected: string): unknown[] | undefined {
    if (Array.isArray(v)) return v
    this.add(path, `must be ${expected} (got ${describe(v)})`)
    return undefined
  }

  /** An optional array of strings; [] when absent. */
  strings(o: Obj, key: string, path: Path): string[] {
    const v = own(o, key)
    if (v === undefined) return []
    if (!Array.isArray(v)) {
      this.add([...path, key], `must be an array of strings (got ${describe(v)})`)
      return []
    }
    const out: string[] = []
    v.forEach((item: unknown, i) => {
      if (typeof item === 'string') out.push(item)
      else this.add([...path, key, i], `must be a string (got ${describe(item)})`)
    })
    return out
  }

  name(name: string, path: Path, kind: string, allowDot = false): void {
    const what = allowDot ? `${kind} id` : `${kind} name`
    if (name === '') {
      this.add(path, `${what} must not be empty`)
    } else if (name.length > MAX_NAME_LENGTH) {
      this.add(path, `${what} is too long (${name.length} characters; at most ${MAX_NAME_LENGTH})`)
    } else if (!(allowDot ? JOB_ID_RE : NAME_RE).test(name)) {
      const chars = allowDot ? 'letters, digits, "_", "-" and "."' : 'letters, digits, "_" and "-"'
      this.add(path, `invalid ${what} ${JSON.stringify(name)}: use only ${chars}`)
    } else if (name === '.' || name === '..') {
      this.add(path, `invalid ${what} ${JSON.stringify(name)}: must not be "." or ".."`)
    }
  }

  /**
   * A map of labelled blocks ({"frontend": {...}}), which must hold at least one.
   * Returns the entries, or [] after reporting why there are none.
   */
  blocks(v: unknown, path: Path, kind: string, example: string): [string, unknown][] {
    if (v === undefined) {
      this.add(path, `is required: define at least one ${kind}, like ${example}`)
      return []
    }
    const o = this.object(v, path, `an object keyed by ${kind} name, like ${example}`)
    if (o === undefined) return []
    const entries = Object.entries(o)
    if (entries.length === 0) this.add(path, `must define at least one ${kind}, like ${example}`)
    return entries
  }
}

/**
 * Validates a parsed job file and normalises it into a JobSpec with every
 * default applied. Reports all problems found, not only the first.
 */
export function validateJob(raw: unknown): SpecResult {
  const c = new Checker()
  let spec: JobSpec | undefined
  if (!isObj(raw)) {
    c.add([], `must be a JSON object with a "job" key, like {"job": {"web": {...}}} (got ${describe(raw)})`)
  } else {
    c.fields(raw, [], ROOT_FIELDS)
    const jobs = own(raw, 'job')
    if (jobs === undefined) {
      c.add(['job'], 'is required: the file must define one job, like {"job": {"web": {...}}}')
    } else {
      const o = c.object(jobs, ['job'], 'an object keyed by job id, like {"job": {"web": {...}}}')
      if (o !== undefined) {
        const ids = Object.keys(o)
        if (ids.length === 0) {
          c.add(['job'], 'must define exactly one job, found none')
        } else if (ids.length > 1) {
          c.add(['job'], `must define exactly one job, found ${ids.length} (${quoteList(ids)}); put each job in its own file`)
        }
        // Check every job even when there are several, so all their problems show at once.
        for (const id of ids) {
          const s = checkJob(c, id, o[id], ['job', id])
          if (ids.length === 1) spec = s
        }
      }
    }
  }
  if (c.errors.length > 0 || spec === undefined) {
    return { ok: false, errors: c.errors }
  }
  return { ok: true, spec }
}

function checkJob(c: Checker, id: string, v: unknown, path: Path): JobSpec | undefined {
  c.name(id, path, 'job', true)
  const o = c.object(v, path)
  if (o === undefined) return undefined
  c.fields(o, path, JOB_FIELDS, JOB_HINTS)
  const type = c.oneOf(o, 'type', path, JOB_TYPES) ?? DEFAULT_JOB_TYPE
  const priority = c.integer(o, 'priority', path, 1, 100) ?? DEFAULT_PRIORITY
  // Job-level rules apply to every group: the normalised spec carries them on each
  // group (constraints marked scope "job"), so a change to them is a change of the groups.
  const jobRules: PlacementRules = {
    constraints: checkConstraints(c, own(o, 'constraint'), [...path, 'constraint']).map((x) => ({ ...x, scope: 'job' as const })),
    affinities: checkAffinities(c, own(o, 'affinity'), [...path, 'affinity']),
    spreads: checkSpreads(c, own(o, 'spread'), [...path, 'spread']),
  }
  const jobReschedule = checkReschedule(c, own(o, 'reschedule'), [...path, 'reschedule'], defaultReschedulePolicy(type))
  const jobUpdate = checkUpdate(c, own(o, 'update'), [...path, 'update'], undefined, type)
  const groups: TaskGroup[] = []
  const example = '{"frontend": {"task": {...}}}'
  for (const [name, g] of c.blocks(own(o, 'group'), [...path, 'group'], 'group', example)) {
    const group = checkGroup(c, name, g, [...path, 'group', name], type, jobRules, jobReschedule, jobUpdate)
    if (group !== undefined) groups.push(group)
  }
  checkServicesOfJob(c, groups)
  return { id, type, priority, groups }
}

interface PlacementRules {
  constraints: Constraint[]
  affinities: Affinity[]
  spreads: Spread[]
}

function checkGroup(
  c: Checker, name: string, v: unknown, path: Path, jobType: JobType, jobRules: PlacementRules, jobReschedule: ReschedulePolicy,
  jobUpdate: UpdateStrategy | undefined,
): TaskGroup | undefined {
  c.name(name, path, 'group')
  const o = c.object(v, path)
  if (o === undefined) return undefined
  c.fields(o, path, GROUP_FIELDS, GROUP_HINTS)
  const count = c.integer(o, 'count', path, 0) ?? DEFAULT_COUNT
  const scaling = checkScaling(c, own(o, 'scaling'), [...path, 'scaling'], jobType, count)
  if (scaling && (count < scaling.min || count > scaling.max)) {
    c.add([...path, 'count'], `must lie within scaling.min and scaling.max (${scaling.min}..${scaling.max}) (got ${count})`)
  }
  const { ports, labels } = checkNetwork(c, own(o, 'network'), [...path, 'network'])
  const restart = checkRestart(c, own(o, 'restart'), [...path, 'restart'], jobType)
  const reschedule = checkReschedule(c, own(o, 'reschedule'), [...path, 'reschedule'], jobReschedule)
  const update = checkUpdate(c, own(o, 'update'), [...path, 'update'], jobUpdate, jobType)
  const migrate = checkMigrate(c, own(o, 'migrate'), [...path, 'migrate'], jobType)
  const constraints = [...jobRules.constraints, ...checkConstraints(c, own(o, 'constraint'), [...path, 'constraint'])]
  const affinities = [...jobRules.affinities, ...checkAffinities(c, own(o, 'affinity'), [...path, 'affinity'])]
  const spreads = [...jobRules.spreads, ...checkSpreads(c, own(o, 'spread'), [...path, 'spread'])]
  const services = checkServices(c, own(o, 'service'), [...path, 'service'], name, labels, undefined)
  const tasks: Task[] = []
  const example = '{"server": {"driver": "docker", "config": {...}}}'
  const taskBlocks = c.blocks(own(o, 'task'), [...path, 'task'], 'task', example)
  for (const [taskName, t] of taskBlocks) {
    const task = checkTask(c, taskName, t, [...path, 'task', taskName], name, labels, services)
    if (task !== undefined) tasks.push(task)
  }
  checkPublishedCheckPorts(c, tasks, path, labels)
  checkServicesOfGroup(c, services, tasks, taskBlocks.length, labels)
  checkTaskOrder(c, tasks, taskBlocks.map(([n]) => n), path, name)
  if (scaling?.policy.metric === 'requests_per_second' && services.length === 0) {
    c.add([...path, 'scaling', 'policy', 'requests_per_second'], 'needs a service in the group: the mesh counts requests per service (add a "service" block with "publish", or reach it through upstreams)')
  }
  return {
    name, count, ports, restart, reschedule, tasks,
    ...(update !== undefined ? { update } : {}),
    ...(migrate ? { migrate } : {}),
    ...(constraints.length > 0 ? { constraints } : {}),
    ...(affinities.length > 0 ? { affinities } : {}),
    ...(spreads.length > 0 ? { spreads } : {}),
    ...(services.length > 0 ? { services } : {}),
    ...(scaling ? { scaling } : {}),
  }
}

const SCALING_EXAMPLE = '{"min": 1, "max": 10, "policy": {"cpu_percent": 70}}'
const POLICY_EXAMPLE = '{"cpu_percent": 70} or {"requests_per_second": 50}'
const SCALING_HINTS: Hints = {
  cpu_percent: 'targets go in the policy block, like "policy": {"cpu_percent": 70}',
  requests_per_second: 'targets go in the policy block, like "policy": {"requests_per_second": 50}',
  count: 'the group\'s count is the starting point; scaling takes "min" and "max"',
}

/**
 * A group's scaling block: count bounds and one autoscaling target. `min`
 * defaults to the group's count (as Nomad's); `max` is required.
 */
function checkScaling(c: Checker, v: unknown, path: Path, jobType: JobType, count: number): ScalingPolicy | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, `an object like ${SCALING_EXAMPLE}`)
  if (o === undefined) return undefined
  c.fields(o, path, SCALING_FIELDS, SCALING_HINTS)
  if (jobType !== 'service') {
    c.add(path, jobType === 'system'
      ? 'a system job runs one allocation per node and has no count to scale'
      : 'only service jobs can be scaled (a batch job runs to completion)')
    return undefined
  }
  let ok = true
  const int = (key: string, min: number): number | undefined => {
    const n = c.integer(o, key, path, min)
    if (n === undefined && own(o, key) !== undefined) ok = false
    return n
  }
  const duration = (key: string): number | undefined => {
    const raw = own(o, key)
    if (typeof raw === 'string' && raw.trim().startsWith('-')) {
      c.add([...path, key], `must not be negative (got ${describe(raw)})`)
      ok = false
      return undefined
    }
    const ms = c.duration(o, key, path)
    if (ms === undefined && raw !== undefined) ok = false
    return ms
  }
  const max = int('max', 1)
  if (own(o, 'max') === undefined) {
    c.add([...path, 'max'], `is required: the most allocations the group may have, like ${SCALING_EXAMPLE}`)
    ok = false
  }
  // Absent: the count (Nomad's default), unless the count itself is out of bounds (reported on count).
  const min = int('min', 0) ?? Math.min(count, max ?? count)
  if (max !== undefined && min > max) {
    c.add([...path, 'min'], `must be at most max (${max}) (got ${min})`)
    ok = false
  }
  const enabled = booleanField(c, o, 'enabled', path)
  if (own(o, 'enabled') !== undefined && enabled === undefined) ok = false
  const cooldownMs = duration('cooldown') ?? DEFAULT_SCALING_COOLDOWN_MS
  const evaluationIntervalMs = duration('evaluation_interval') ?? DEFAULT_SCALING_INTERVAL_MS
  if (evaluationIntervalMs < MIN_SCALING_INTERVAL_MS) {
    c.add([...path, 'evaluation_interval'], `must be at least 1s (got ${describe(own(o, 'evaluation_interval'))})`)
    ok = false
  }
  const scaleInStep = int('scale_in_step', 1) ?? DEFAULT_SCALE_IN_STEP
  const scaleOutStep = int('scale_out_step', 1)
  const policy = checkScalingTarget(c, own(o, 'policy'), [...path, 'policy'])
  if (!ok || policy === undefined || max === undefined) return undefined
  return {
    min, max, enabled: enabled ?? true, cooldownMs, evaluationIntervalMs, scaleInStep,
    ...(scaleOutStep !== undefined ? { scaleOutStep } : {}), policy,
  }
}

function checkScalingTarget(c: Checker, v: unknown, path: Path): ScalingTarget | undefined {
  if (v === undefined) {
    c.add(path, `is required: one target, like ${POLICY_EXAMPLE}`)
    return undefined
  }
  const o = c.object(v, path, `an object with one target, like ${POLICY_EXAMPLE}`)
  if (o === undefined) return undefined
  c.fields(o, path, SCALING_METRICS, {
    cpu: 'did you mean "cpu_percent"? (average CPU use in percent of the reserved CPU)',
    rps: 'did you mean "requests_per_second"?',
    memory_percent: 'Shoal scales on "cpu_percent" or "requests_per_second"',
  })
  const given = SCALING_METRICS.filter((m) => own(o, m) !== undefined)
  if (given.length === 0) {
    if (Object.keys(o).length === 0) c.add(path, `must name one target, like ${POLICY_EXAMPLE}`)
    return undefined
  }
  if (given.length > 1) {
    c.add(path, `must name exactly one target, found ${quoteList(given)}`)
    return undefined
  }
  const metric = given[0]!
  const target = own(o, metric)
  if (typeof target !== 'number' || !Number.isFinite(target) || target <= 0) {
    c.add([...path, metric], `must be a number > 0 (got ${describe(target)})`)
    return undefined
  }
  return { metric, target }
}

interface NetworkResult {
  ports: PortSpec[]
  /** Labels the group declares; undefined when the network block is too broken to tell. */
  labels: ReadonlySet<string> | undefined
}

function checkNetwork(c: Checker, v: unknown, path: Path): NetworkResult {
  if (v === undefined) return { ports: [], labels: new Set() }
  const o = c.object(v, path)
  if (o === undefined) return { ports: [], labels: undefined }
  c.fields(o, path, NETWORK_FIELDS)
  const raw = own(o, 'port')
  if (raw === undefined) return { ports: [], labels: new Set() }
  const portMap = c.object(raw, [...path, 'port'], 'an object keyed by port label, like {"http": {"to": 80}}')
  if (portMap === undefined) return { ports: [], labels: undefined }

  const ports: PortSpec[] = []
  const staticOwner = new Map<number, string>()
  for (const [label, pv] of Object.entries(portMap)) {
    const pp = [...path, 'port', label]
    c.name(label, pp, 'port label')
    const po = c.object(pv, pp, 'an object like {"to": 80}, {"static": 8080} or {}')
    if (po === undefined) continue
    c.fields(po, pp, PORT_FIELDS)
    const port: PortSpec = { label }
    const to = c.integer(po, 'to', pp, 1, 65535)
    if (to !== undefined) port.to = to
    const fixed = c.integer(po, 'static', pp, 1, 65535)
    if (fixed !== undefined) {
      const other = staticOwner.get(fixed)
      if (other !== undefined) {
        c.add([...pp, 'static'], `host port ${fixed} is already taken by port ${JSON.stringify(other)} of this group`)
      } else {
        staticOwner.set(fixed, label)
      }
      port.static = fixed
    }
    const protocol = c.oneOf(po, 'protocol', pp, PORT_PROTOCOLS)
    if (protocol !== undefined && protocol !== 'tcp') port.protocol = protocol
    ports.push(port)
  }
  // Labels whose blocks were broken still count as declared: no second error for their uses.
  return { ports, labels: new Set(Object.keys(portMap)) }
}

/**
 * An update block; its fields override `base` (the job's block), then the
 * defaults. Undefined when neither level gives one: the defaults apply.
 */
function checkUpdate(c: Checker, v: unknown, path: Path, base: UpdateStrategy | undefined, jobType: JobType): UpdateStrategy | undefined {
  if (v === undefined) return base
  if (jobType !== 'service') {
    c.add(path, `is only for service jobs (this is a ${jobType} job): deployments roll out service jobs`)
    return undefined
  }
  const o = c.object(v, path, 'an object like {"max_parallel": 1, "min_healthy_time": "10s", "healthy_deadline": "5m", "auto_revert": true}')
  if (o === undefined) return base
  c.fields(o, path, UPDATE_FIELDS)
  const from = base ?? defaultUpdateStrategy()
  const u: UpdateStrategy = {
    maxParallel: c.integer(o, 'max_parallel', path, 1) ?? from.maxParallel,
    minHealthyTimeMs: c.duration(o, 'min_healthy_time', path) ?? from.minHealthyTimeMs,
    healthyDeadlineMs: c.duration(o, 'healthy_deadline', path) ?? from.healthyDeadlineMs,
    progressDeadlineMs: c.duration(o, 'progress_deadline', path) ?? from.progressDeadlineMs,
    healthCheck: c.oneOf(o, 'health_check', path, HEALTH_CHECK_MODES) ?? from.healthCheck,
    autoRevert: booleanField(c, o, 'auto_revert', path) ?? from.autoRevert,
    canary: c.integer(o, 'canary', path, 0) ?? from.canary,
    autoPromote: booleanField(c, o, 'auto_promote', path) ?? from.autoPromote,
    staggerMs: c.duration(o, 'stagger', path) ?? from.staggerMs,
  }
  if (u.healthyDeadlineMs <= 0) c.add([...path, 'healthy_deadline'], 'must be longer than 0')
  else if (u.minHealthyTimeMs >= u.healthyDeadlineMs) {
    c.add([...path, 'min_healthy_time'], `must be shorter than healthy_deadline (${formatDuration(u.healthyDeadlineMs)})`)
  }
  if (u.progressDeadlineMs !== 0 && u.progressDeadlineMs < u.healthyDeadlineMs) {
    c.add([...path, 'progress_deadline'], `must be 0 (none) or at least healthy_deadline (${formatDuration(u.healthyDeadlineMs)})`)
  }
  if (u.autoPromote && u.canary === 0 && own(o, 'auto_promote') !== undefined) c.add([...path, 'auto_promote'], 'needs canary ≥ 1')
  return u
}

/** A reschedule block; its fields override `base` (the job's block, or the type's defaults). */
function checkReschedule(c: Checker, v: unknown, path: Path, base: ReschedulePolicy): ReschedulePolicy {
  if (v === undefined) return base
  const o = c.object(v, path, 'an object like {"delay": "30s", "delay_function": "exponential", "max_delay": "1h", "unlimited": true}')
  if (o === undefined) return base
  c.fields(o, path, RESCHEDULE_FIELDS)
  const unlimited = own(o, 'unlimited')
  if (unlimited !== undefined && typeof unlimited !== 'boolean') c.add([...path, 'unlimited'], `must be true or false (got ${describe(unlimited)})`)
  const policy: ReschedulePolicy = {
    attempts: c.integer(o, 'attempts', path, 0) ?? base.attempts,
    intervalMs: c.duration(o, 'interval', path) ?? base.intervalMs,
    delayMs: c.duration(o, 'delay', path) ?? base.delayMs,
    delayFunction: c.oneOf(o, 'delay_function', path, DELAY_FUNCTIONS) ?? base.delayFunction,
    maxDelayMs: c.duration(o, 'max_delay', path) ?? base.maxDelayMs,
    unlimited: typeof unlimited === 'boolean' ? unlimited : base.unlimited,
  }
  if (policy.delayFunction !== 'constant' && policy.maxDelayMs > 0 && policy.maxDelayMs < policy.delayMs) {
    c.add([...path, 'max_delay'], `must be at least the delay (${policy.delayMs} ms)`)
  }
  if (!policy.unlimited && policy.attempts > 0 && policy.intervalMs <= 0) c.add([...path, 'interval'], 'must be set (> 0) when attempts are limited')
  return policy
}

/** A migrate block (service jobs): absent stays absent, and the scheduler applies Nomad's defaults. */
function checkMigrate(c: Checker, v: unknown, path: Path, jobType: JobType): MigratePolicy | undefined {
  if (v === undefined) return undefined
  if (jobType !== 'service') {
    c.add(path, `only service jobs migrate (a ${jobType} job's allocations ${jobType === 'batch' ? 'run until the drain deadline' : 'are stopped last in a drain'})`)
    return undefined
  }
  const o = c.object(v, path, 'an object like {"max_parallel": 1, "health_check": "checks", "min_healthy_time": "10s", "healthy_deadline": "5m"}')
  if (o === undefined) return undefined
  c.fields(o, path, MIGRATE_FIELDS)
  const d = DEFAULT_MIGRATE_POLICY
  const policy: MigratePolicy = {
    maxParallel: c.integer(o, 'max_parallel', path, 1) ?? d.maxParallel,
    healthCheck: c.oneOf(o, 'health_check', path, HEALTH_CHECK_MODES) ?? d.healthCheck,
    minHealthyTimeMs: c.duration(o, 'min_healthy_time', path) ?? d.minHealthyTimeMs,
    healthyDeadlineMs: c.duration(o, 'healthy_deadline', path) ?? d.healthyDeadlineMs,
  }
  if (policy.healthyDeadlineMs <= policy.minHealthyTimeMs) {
    c.add([...path, own(o, 'healthy_deadline') !== undefined ? 'healthy_deadline' : 'min_healthy_time'],
      `healthy_deadline (${policy.healthyDeadlineMs} ms) must be longer than min_healthy_time (${policy.minHealthyTimeMs} ms)`)
  }
  return policy
}

function checkRestart(c: Checker, v: unknown, path: Path, jobType: JobType): RestartPolicy {
  const defaults = defaultRestartPolicy(jobType)
  if (v === undefined) return defaults
  const o = c.object(v, path)
  if (o === undefined) return defaults
  c.fields(o, path, RESTART_FIELDS)
  return {
    attempts: c.integer(o, 'attempts', path, 0) ?? defaults.attempts,
    intervalMs: c.duration(o, 'interval', path) ?? defaults.intervalMs,
    delayMs: c.duration(o, 'delay', path) ?? defaults.delayMs,
    mode: c.oneOf(o, 'mode', path, RESTART_MODES) ?? defaults.mode,
  }
}

function checkTask(
  c: Checker,
  name: string,
  v: unknown,
  path: Path,
  groupName: string,
  labels: ReadonlySet<string> | undefined,
  services: ServiceSpec[],
): Task | undefined {
  c.name(name, path, 'task')
  const o = c.object(v, path)
  if (o === undefined) return undefined
  c.fields(o, path, TASK_FIELDS, TASK_HINTS)

  const driverPath = [...path, 'driver']
  const rawDriver = own(o, 'driver')
  let driver: DriverName | undefined
  if (rawDriver === undefined) {
    c.add(driverPath, `is required (${KNOWN_DRIVERS})`)
  } else if (typeof rawDriver !== 'string') {
    c.add(driverPath, `must be a string naming a driver (got ${describe(rawDriver)}; ${KNOWN_DRIVERS})`)
  } else if (!isDriverName(rawDriver)) {
    const guess = suggest(rawDriver, DRIVER_NAMES)
    const didYouMean = guess === undefined ? '' : `did you mean ${JSON.stringify(guess)}? `
    c.add(driverPath, `unknown driver ${JSON.stringify(rawDriver)} (${didYouMean}${KNOWN_DRIVERS})`)
  } else {
    driver = rawDriver
  }

  const configPath = [...path, 'config']
  const rawConfig = own(o, 'config')
  let docker: DockerTaskConfig | undefined
  let exec: ExecTaskConfig | undefined
  if (driver === 'docker') docker = checkDockerConfig(c, rawConfig, configPath, groupName, labels)
  else if (driver === 'exec') exec = checkExecConfig(c, rawConfig, configPath)
  else if (rawConfig !== undefined) c.object(rawConfig, configPath)

  const env = checkEnv(c, own(o, 'env'), [...path, 'env'])
  const resources = checkResources(c, own(o, 'resources'), [...path, 'resources'])
  const killTimeoutMs = c.duration(o, 'kill_timeout', path) ?? DEFAULT_KILL_TIMEOUT_MS
  const constraints = checkConstraints(c, own(o, 'constraint'), [...path, 'constraint'])
  const affinities = checkAffinities(c, own(o, 'affinity'), [...path, 'affinity'])
  const checks = checkChecks(c, own(o, 'check'), [...path, 'check'], groupName, labels)
  const checkRestart = checkCheckRestart(c, own(o, 'check_restart'), [...path, 'check_restart'], checks.length > 0 || own(o, 'check') !== undefined)
  const lifecycle = checkLifecycle(c, own(o, 'lifecycle'), [...path, 'lifecycle'])
  const dependsOn = checkDependsOn(c, own(o, 'depends_on'), [...path, 'depends_on'])
  const essential = booleanField(c, o, 'essential', path)
  const envFromVar = checkEnvFromVar(c, own(o, 'env_from_var'), [...path, 'env_from_var'], env)
  services.push(...checkServices(c, own(o, 'service'), [...path, 'service'], groupName, labels, name))
  const upstreams = checkUpstreams(c, own(o, 'upstreams'), [...path, 'upstreams'])
  const logs = checkLogs(c, own(o, 'logs'), [...path, 'logs'])

  const base = {
    name, env, resources, killTimeoutMs,
    ...(constraints.length > 0 ? { constraints } : {}),
    ...(affinities.length > 0 ? { affinities } : {}),
    ...(checks.length > 0 ? { checks } : {}),
    ...(checkRestart !== undefined ? { checkRestart } : {}),
    ...(lifecycle !== undefined ? { lifecycle } : {}),
    ...(dependsOn.length > 0 ? { dependsOn } : {}),
    ...(essential === false ? { essential } : {}),
    ...(envFromVar !== undefined ? { envFromVar } : {}),
    ...(upstreams.length > 0 ? { upstreams } : {}),
    ...(logs !== undefined ? { logs } : {}),
  }
  if (docker !== undefined) return { ...base, driver: 'docker', config: docker }
  if (exec !== undefined) return { ...base, driver: 'exec', config: exec }
  return undefined
}

function checkDockerConfig(
  c: Checker,
  v: unknown,
  path: Path,
  groupName: string,
  labels: ReadonlySet<string> | undefined,
): DockerTaskConfig | undefined {
  if (v === undefined) {
    c.add(path, 'is required for the docker driver, like {"image": "busybox:1.36"}')
    return undefined
  }
  const o = c.object(v, path)
  if (o === undefined) return undefined
  c.fields(o, path, DOCKER_FIELDS)
  const image = c.string(o, 'image', path, true)
  if (image !== undefined && /\s/.test(image)) {
    c.add([...path, 'image'], `must not contain whitespace (got ${describe(image)})`)
  }
  const command = c.string(o, 'command', path, false, " (leave it out to run the image's default command)")
  const args = c.strings(o, 'args', path)
  const ports = c.strings(o, 'ports', path)

  const raw = own(o, 'ports')
  if (Array.isArray(raw)) {
    const seen = new Set<string>()
    raw.forEach((label: unknown, i) => {
      if (typeof label !== 'string') return
      const at = [...path, 'ports', i]
      if (seen.has(label)) c.add(at, `port label ${JSON.stringify(label)} is listed more than once`)
      seen.add(label)
      if (labels === undefined || labels.has(label)) return
      c.add(at, unknownPortMessage(label, groupName, labels))
    })
  }

  const volumes = checkVolumes(c, own(o, 'volumes'), [...path, 'volumes'])
  const cpuHardLimit = booleanField(c, o, 'cpu_hard_limit', path)

  if (image === undefined) return undefined
  const config: DockerTaskConfig = { image, args, ports }
  if (command !== undefined) config.command = command
  if (volumes.length > 0) config.volumes = volumes
  if (cpuHardLimit) config.cpuHardLimit = true
  return config
}

const VOLUME_EXAMPLE = '"/srv/data:/data" or "/etc/app:/etc/app:ro"'

/** "/host/path:/container/path[:ro|rw]" → a VolumeMount. */
function checkVolumes(c: Checker, v: unknown, path: Path): VolumeMount[] {
  if (v === undefined) return []
  const list = c.array(v, path, `an array of strings like [${VOLUME_EXAMPLE}]`)
  if (list === undefined) return []
  const out: VolumeMount[] = []
  const targets = new Set<string>()
  list.forEach((item: unknown, i) => {
    const at = [...path, i]
    if (typeof item !== 'string') return c.add(at, `must be a string like ${VOLUME_EXAMPLE} (got ${describe(item)})`)
    const parts = item.split(':')
    if (parts.length < 2 || parts.length > 3) return c.add(at, `must be "HOST_PATH:CONTAINER_PATH" with an optional ":ro" or ":rw", like ${VOLUME_EXAMPLE} (got ${describe(item)})`)
    const [hostPath, containerPath, mode] = parts as [string, string, string | undefined]
    let ok = true
    if (!hostPath.startsWith('/')) {
      c.add(at, `host path must be absolute (got ${describe(hostPath)})`)
      ok = false
    }
    if (!containerPath.startsWith('/')) {
      c.add(at, `container path must be absolute (got ${describe(containerPath)})`)
      ok = false
    }
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') {
      c.add(at, `mode must be "ro" or "rw" (got ${describe(mode)})`)
      ok = false
    }
    if (item.includes('\0')) {
      c.add(at, 'must not contain a NUL character')
      ok = false
    }
    if (ok && targets.has(containerPath)) {
      c.add(at, `container path ${JSON.stringify(containerPath)} is mounted more than once`)
      ok = false
    }
    if (!ok) return
    targets.add(containerPath)
    out.push({ hostPath, containerPath, readOnly: mode === 'ro' })
  })
  return out
}

function checkEnvFromVar(c: Checker, v: unknown, path: Path, env: Record<string, string>): Record<string, string> | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, 'an object of variable paths, like {"DB_PASSWORD": "app/db/password"}')
  if (o === undefined) return undefined
  const entries: [string, string][] = []
  for (const [key, value] of Object.entries(o)) {
    const at = [...path, key]
    if (key === '') c.add(at, 'environment variable name must not be empty')
    else if (/[=\0]/.test(key)) c.add(at, `invalid environment variable name ${JSON.stringify(key)}: must not contain "=" or NUL`)
    else if (Object.hasOwn(env, key)) c.add(at, `${JSON.stringify(key)} is also set in "env"; set it in one place`)
    if (typeof value !== 'string') {
      c.add(at, `must be the path of a variable, a string like "app/db/password" (got ${describe(value)})`)
      continue
    }
    const problem = varPathProblem(value)
    if (problem) c.add(at, `variable path ${problem}`)
    else entries.push([key, value])
  }
  return entries.length > 0 ? Object.fromEntries(entries) : undefined
}

function unknownPortMessage(label: string, groupName: string, labels: ReadonlySet<string>): string {
  const group = JSON.stringify(groupName)
  if (labels.size === 0) {
    return `unknown port label ${JSON.stringify(label)}: group ${group} declares no ports (add it under network.port)`
  }
  const known = [...labels]
  const guess = suggest(label, known)
  const didYouMean = guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`
  return `unknown port label ${JSON.stringify(label)}: group ${group} declares ${quoteList(known)}${didYouMean}`
}

function checkExecConfig(c: Checker, v: unknown, path: Path): ExecTaskConfig | undefined {
  if (v === undefined) {
    c.add(path, 'is required for the exec driver, like {"command": "/bin/sleep", "args": ["60"]}')
    return undefined
  }
  const o = c.object(v, path)
  if (o === undefined) return undefined
  c.fields(o, path, EXEC_FIELDS, EXEC_HINTS)
  const command = c.string(o, 'command', path, true)
  const args = c.strings(o, 'args', path)
  const cpuHardLimit = booleanField(c, o, 'cpu_hard_limit', path)
  if (command === undefined) return undefined
  return cpuHardLimit ? { command, args, cpuHardLimit } : { command, args }
}

function checkEnv(c: Checker, v: unknown, path: Path): Record<string, string> {
  if (v === undefined) return {}
  const o = c.object(v, path, 'an object of string values, like {"GREETING": "hi"}')
  if (o === undefined) return {}
  const entries: [string, string][] = []
  for (const [key, value] of Object.entries(o)) {
    const at = [...path, key]
    if (key === '') c.add(at, 'environment variable name must not be empty')
    else if (/[=\0]/.test(key)) c.add(at, `invalid environment variable name ${JSON.stringify(key)}: must not contain "=" or NUL`)
    if (typeof value === 'string') {
      if (value.includes('\0')) c.add(at, 'must not contain a NUL character')
      else entries.push([key, value])
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      c.add(at, `must be a string (got ${typeof value} ${describe(value)}); quote it: "${String(value)}"`)
    } else {
      c.add(at, `must be a string (got ${describe(value)})`)
    }
  }
  // fromEntries defines own properties, so even a "__proto__" key stays plain data.
  return Object.fromEntries(entries)
}

function checkResources(c: Checker, v: unknown, path: Path): Resources {
  if (v === undefined) return { ...DEFAULT_RESOURCES }
  const o = c.object(v, path)
  if (o === undefined) return { ...DEFAULT_RESOURCES }
  c.fields(o, path, RESOURCE_FIELDS, RESOURCE_HINTS)
  const resources: Resources = {
    cpu: c.integer(o, 'cpu', path, 1) ?? DEFAULT_RESOURCES.cpu,
    memoryMB: c.integer(o, 'memory', path, 1) ?? DEFAULT_RESOURCES.memoryMB,
  }
  const max = c.integer(o, 'memory_max', path, 1)
  if (max !== undefined && max < resources.memoryMB) {
    c.add([...path, 'memory_max'], `must be at least "memory" (${resources.memoryMB} MB): it is the hard limit above the reservation (got ${max})`)
  } else if (max !== undefined) {
    resources.memoryMaxMB = max
  }
  return resources
}

function booleanField(c: Checker, o: Obj, key: string, path: Path): boolean | undefined {
  const v = own(o, key)
  if (v === undefined || typeof v === 'boolean') return v
  const quoted = v === 'true' || v === 'false' ? `; leave out the quotes: ${v}` : ''
  c.add([...path, key], `must be true or false (got ${describe(v)}${quoted})`)
  return undefined
}

// --- Task ordering: lifecycle, depends_on, essential --------------------------------

function checkLifecycle(c: Checker, v: unknown, path: Path): TaskLifecycle | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, 'an object like {"hook": "prestart", "sidecar": false}')
  if (o === undefined) return undefined
  c.fields(o, path, LIFECYCLE_FIELDS)
  const hook = c.oneOf(o, 'hook', path, LIFECYCLE_HOOKS)
  if (own(o, 'hook') === undefined) c.add([...path, 'hook'], `is required (one of ${quoteList(LIFECYCLE_HOOKS)})`)
  const sidecar = booleanField(c, o, 'sidecar', path) ?? false
  if (sidecar && hook === 'poststop') c.add([...path, 'sidecar'], 'only prestart and poststart tasks can be sidecars')
  return hook === undefined ? undefined : { hook, sidecar }
}

function checkDependsOn(c: Checker, v: unknown, path: Path): TaskDependency[] {
  return blockList(c, v, path, '[{"task": "db", "condition": "HEALTHY"}]', (o, at): TaskDependency | undefined => {
    c.fields(o, at, DEPENDENCY_FIELDS, { containerName: 'Shoal calls it "task"' })
    const task = c.string(o, 'task', at, true)
    const condition = c.oneOf(o, 'condition', at, DEPENDENCY_CONDITIONS) ?? (own(o, 'condition') === undefined ? 'START' : undefined)
    return task === undefined || condition === undefined ? undefined : { task, condition }
  })
}

/** Where a task waits, as edges from the waiting task: its depends_on and what its lifecycle implies. */
function waitEdges(tasks: readonly Task[]): Map<string, { to: string; explicit: number | undefined }[]> {
  const edges = new Map<string, { to: string; explicit: number | undefined }[]>()
  const hook = (t: Task) => t.lifecycle?.hook ?? 'main'
  for (const t of tasks) {
    const out: { to: string; explicit: number | undefined }[] = []
    t.dependsOn?.forEach((d, i) => {
      if (d.task !== t.name) out.push({ to: d.task, explicit: i })
    })
    for (const other of tasks) {
      if (other === t) continue
      const h = hook(t)
      const oh = hook(other)
      if ((h === 'main' && oh === 'prestart') || (h === 'poststart' && oh === 'main') || (h === 'poststop' && oh !== 'poststop')) {
        out.push({ to: other.name, explicit: undefined })
      }
    }
    edges.set(t.name, out)
  }
  return edges
}

function checkTaskOrder(c: Checker, tasks: readonly Task[], names: readonly string[], groupPath: Path, groupName: string): void {
  const byName = new Map(tasks.map((t) => [t.name, t]))
  const allValid = tasks.length === names.length
  if (allValid && tasks.length > 0 && tasks.every((t) => t.lifecycle !== undefined)) {
    c.add([...groupPath, 'task'], 'needs at least one main task (a task without a lifecycle block)')
  }
  for (const t of tasks) {
    const seen = new Set<string>()
    t.dependsOn?.forEach((d, i) => {
      const at = [...groupPath, 'task', t.name, 'depends_on', i]
      if (d.task === t.name) return c.add([...at, 'task'], 'a task cannot depend on itself')
      if (!names.includes(d.task)) {
        const guess = suggest(d.task, names)
        const didYouMean = guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`
        return c.add([...at, 'task'], `unknown task ${JSON.stringify(d.task)}${didYouMean}: group ${JSON.stringify(groupName)} has tasks ${quoteList(names)}`)
      }
      if (seen.has(d.task)) return c.add([...at, 'task'], `task ${JSON.stringify(d.task)} is listed more than once`)
      seen.add(d.task)
      const target = byName.get(d.task)
      if (!target) return
      if (d.condition === 'HEALTHY' && !target.checks) {
        c.add([...at, 'condition'], `task ${JSON.stringify(d.task)} has no check, so it never becomes healthy; add a "check" block to it`)
      }
      if ((d.condition === 'COMPLETE' || d.condition === 'SUCCESS') && !isEphemeralTask(target) && isEssentialTask(target)) {
        c.add([...at, 'condition'], `task ${JSON.stringify(d.task)} is essential: its exit stops the group, so no task can wait for it to ${d.condition === 'COMPLETE' ? 'complete' : 'succeed'}; set "essential": false on it`)
      }
    })
  }
  if (!allValid) return
  // Cycles, through depends_on and the waits lifecycle hooks imply.
  const edges = waitEdges(tasks)
  const state = new Map<string, 'active' | 'done'>()
  const stack: { task: string; via: { to: string; explicit: number | undefined } | undefined }[] = []
  const reported = new Set<string>()
  const visit = (name: string): void => {
    state.set(name, 'active')
    for (const e of edges.get(name) ?? []) {
      if (!byName.has(e.to)) continue
      if (state.get(e.to) === 'active') {
        const start = stack.findIndex((s) => s.task === e.to)
        const cycle = stack.slice(start).map((s) => s.task)
        const hops: { from: string; to: string; explicit: number | undefined }[] = []
        const path = [...stack.slice(start + 1).map((s) => s.via!), e]
        cycle.forEach((from, i) => hops.push({ from, ...path[i]! }))
        const key = [...new Set(cycle)].sort().join(',')
        if (reported.has(key)) continue
        reported.add(key)
        const explicit = hops.find((h) => h.explicit !== undefined) ?? hops[0]!
        const implicit = hops.some((h) => h.explicit === undefined)
        const text = [...hops.map((h) => h.from), e.to].join(' → ')
        const note = implicit ? ' ("→" is "waits for"; main tasks wait for prestart tasks, poststart tasks for main tasks, poststop tasks for all others)' : ''
        c.add([...groupPath, 'task', explicit.from, 'depends_on', explicit.explicit ?? 0], `forms a cycle: ${text}${note}`)
        continue
      }
      if (state.get(e.to) === 'done') continue
      stack.push({ task: e.to, via: e })
      visit(e.to)
      stack.pop()
    }
    state.set(name, 'done')
  }
  for (const t of tasks) {
    if (state.has(t.name)) continue
    stack.push({ task: t.name, via: undefined })
    visit(t.name)
    stack.pop()
  }
}

// --- Health checks -----------------------------------------------------------------

const CHECK_EXAMPLE = '[{"type": "http", "port": "http", "path": "/health", "interval": "5s"}]'

function checkChecks(c: Checker, v: unknown, path: Path, groupName: string, labels: ReadonlySet<string> | undefined, defaultPort?: string): TaskCheck[] {
  return blockList(c, v, path, CHECK_EXAMPLE, (o, at) => checkCheck(c, o, at, groupName, labels, defaultPort))
}

/** `defaultPort`: the label an http/tcp check without "port" probes (a service's port). */
function checkCheck(c: Checker, o: Obj, path: Path, groupName: string, labels: ReadonlySet<string> | undefined, defaultPort?: string): TaskCheck | undefined {
  c.fields(o, path, CHECK_FIELDS, { name: 'checks have no name in Shoal; leave it out' })
  const rawType = own(o, 'type')
  const type = c.oneOf(o, 'type', path, CHECK_TYPES)
  if (rawType === undefined) c.add([...path, 'type'], `is required (one of ${quoteList(CHECK_TYPES)})`)
  const only = (key: string, types: string) => {
    if (type !== undefined && own(o, key) !== undefined) c.add([...path, key], `only applies to ${types} checks (this is a ${type} check)`)
  }
  let port: string | undefined
  if (type === 'http' || type === 'tcp') {
    port = own(o, 'port') === undefined && defaultPort !== undefined ? defaultPort : c.string(o, 'port', path, true)
    if (port !== undefined && own(o, 'port') !== undefined && labels !== undefined && !labels.has(port)) c.add([...path, 'port'], unknownPortMessage(port, groupName, labels))
  } else {
    only('port', 'http and tcp')
  }
  let checkPath: string | undefined
  let expectedStatus: number | undefined
  if (type === 'http') {
    checkPath = c.string(o, 'path', path, false)
    if (checkPath !== undefined && !checkPath.startsWith('/')) c.add([...path, 'path'], `must start with "/" (got ${describe(checkPath)})`)
    expectedStatus = c.integer(o, 'expected_status', path, 100, 599)
  } else {
    only('path', 'http')
    only('expected_status', 'http')
  }
  let command: string | undefined
  let args: string[] = []
  if (type === 'command') {
    command = c.string(o, 'command', path, true)
    args = c.strings(o, 'args', path)
  } else {
    only('command', 'command')
    only('args', 'command')
  }
  const intervalMs = c.duration(o, 'interval', path) ?? DEFAULT_CHECK_INTERVAL_MS
  const timeoutMs = c.duration(o, 'timeout', path) ?? DEFAULT_CHECK_TIMEOUT_MS
  if (own(o, 'interval') !== undefined && intervalMs <= 0) c.add([...path, 'interval'], 'must be longer than 0s')
  if (own(o, 'timeout') !== undefined && timeoutMs <= 0) c.add([...path, 'timeout'], 'must be longer than 0s')
  const retries = c.integer(o, 'retries', path, 1) ?? DEFAULT_CHECK_RETRIES
  const startPeriodMs = c.duration(o, 'start_period', path) ?? 0
  if (type === undefined) return undefined
  const check: TaskCheck = { type, intervalMs, timeoutMs, retries, startPeriodMs }
  if (port !== undefined) check.port = port
  if (type === 'http') check.path = checkPath ?? '/'
  if (expectedStatus !== undefined) check.expectedStatus = expectedStatus
  if (command !== undefined) {
    check.command = command
    check.args = args
  }
  if ((type === 'http' || type === 'tcp') && port === undefined) return undefined
  if (type === 'command' && command === undefined) return undefined
  return check
}

function checkLogs(c: Checker, v: unknown, path: Path): TaskLogs | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, 'an object like {"max_files": 10, "max_file_size_mb": 10}')
  if (o === undefined) return undefined
  c.fields(o, path, LOGS_FIELDS, LOGS_HINTS)
  return {
    maxFiles: c.integer(o, 'max_files', path, 1, MAX_LOG_FILES) ?? DEFAULT_TASK_LOGS.maxFiles,
    maxFileSizeMB: c.integer(o, 'max_file_size_mb', path, 1, MAX_LOG_FILE_SIZE_MB) ?? DEFAULT_TASK_LOGS.maxFileSizeMB,
  }
}

function checkCheckRestart(c: Checker, v: unknown, path: Path, hasChecks: boolean): CheckRestart | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, 'an object like {"limit": 3, "grace": "10s"}')
  if (o === undefined) return undefined
  c.fields(o, path, CHECK_RESTART_FIELDS)
  if (!hasChecks) c.add(path, 'needs at least one check in the task\'s "check" block')
  return {
    limit: c.integer(o, 'limit', path, 1) ?? DEFAULT_CHECK_RESTART.limit,
    graceMs: c.duration(o, 'grace', path) ?? DEFAULT_CHECK_RESTART.graceMs,
  }
}

/** An http/tcp check of a docker task needs its port published by a docker task of the group. */
function checkPublishedCheckPorts(c: Checker, tasks: readonly Task[], groupPath: Path, labels: ReadonlySet<string> | undefined): void {
  const published = new Set(tasks.flatMap((t) => (t.driver === 'docker' ? t.config.ports : [])))
  for (const t of tasks) {
    if (t.driver !== 'docker') continue
    t.checks?.forEach((check, i) => {
      if (check.port === undefined || published.has(check.port) || !labels?.has(check.port)) return
      c.add([...groupPath, 'task', t.name, 'check', i, 'port'],
        `port ${JSON.stringify(check.port)} is not published by a docker task of the group; add it to config.ports`)
    })
  }
}

// --- Services and upstreams ---------------------------------------------------------

const SERVICE_EXAMPLE = '[{"name": "web", "port": "http", "tags": ["v1"], "checks": [{"type": "http", "path": "/"}]}]'
const UPSTREAM_EXAMPLE = '[{"service": "db", "local_port": 5432}]'

/** Where each service block was written: its errors found later (across groups) name it. */
const servicePaths = new WeakMap<ServiceSpec, Path>()

function serviceNameProblem(name: string): string | null {
  if (SERVICE_NAME_RE.test(name)) return null
  const lower = name.toLowerCase()
  const hint = lower !== name && SERVICE_NAME_RE.test(lower) ? ` (did you mean ${JSON.stringify(lower)}?)` : ''
  return `invalid service name ${JSON.stringify(name)}: it is a DNS label, so use lower-case letters, digits and "-" (not first or last), at most 63 characters${hint}`
}

function checkServices(c: Checker, v: unknown, path: Path, groupName: string, labels: ReadonlySet<string> | undefined, task: string | undefined): ServiceSpec[] {
  if (isObj(v)) {
    c.add(path, `must be an array of service blocks, like ${SERVICE_EXAMPLE} (got an object)`)
    return []
  }
  return blockList(c, v, path, SERVICE_EXAMPLE, (o, at) => checkService(c, o, at, groupName, labels, task))
}

function checkService(c: Checker, o: Obj, path: Path, groupName: string, labels: ReadonlySet<string> | undefined, task: string | undefined): ServiceSpec | undefined {
  c.fields(o, path, SERVICE_FIELDS, {
    check: 'the key is "checks", an array of check blocks',
    address_mode: 'instances register the host address and port of their port label',
    upstreams: '"upstreams" is a task setting, beside "service" in the task block',
  })
  const name = c.string(o, 'name', path, true)
  if (name !== undefined) {
    const problem = serviceNameProblem(name)
    if (problem !== null) c.add([...path, 'name'], problem)
  }
  const port = c.string(o, 'port', path, true, ': name a port label of the group')
  if (port !== undefined && labels !== undefined && !labels.has(port)) c.add([...path, 'port'], unknownPortMessage(port, groupName, labels))
  const tags = c.strings(o, 'tags', path)
  const seen = new Set<string>()
  tags.forEach((t, i) => {
    if (t.trim() === '') c.add([...path, 'tags', i], 'must not be empty')
    else if (seen.has(t)) c.add([...path, 'tags', i], `tag ${JSON.stringify(t)} is listed more than once`)
    seen.add(t)
  })
  const checks = checkChecks(c, own(o, 'checks'), [...path, 'checks'], groupName, labels, port)
  const publish = checkPublish(c, own(o, 'publish'), [...path, 'publish'])
  if (name === undefined || port === undefined) return undefined
  const spec: ServiceSpec = {
    name, port, tags,
    ...(checks.length > 0 ? { checks } : {}),
    ...(publish !== undefined ? { publish } : {}),
    ...(task !== undefined ? { task } : {}),
  }
  servicePaths.set(spec, path)
  return spec
}

function checkPublish(c: Checker, v: unknown, path: Path): ServicePublish | undefined {
  if (v === undefined) return undefined
  const o = c.object(v, path, 'an object like {"port": 8080, "balance": "round-robin"}')
  if (o === undefined) return undefined
  c.fields(o, path, PUBLISH_FIELDS, { proxyProtocol: 'the key is "proxy_protocol"', ingress: 'publish the service on "port"' })
  const port = c.integer(o, 'port', path, 1, 65535)
  if (own(o, 'port') === undefined) c.add([...path, 'port'], 'is required: the port every agent serves the service on (1-65535)')
  const balance = c.oneOf(o, 'balance', path, BALANCE_MODES) ?? 'round-robin'
  const rawProxy = own(o, 'proxy_protocol')
  const proxyProtocol = typeof rawProxy === 'number'
    ? (c.add([...path, 'proxy_protocol'], `must be "v1" or "v2" (got ${rawProxy}); quote it: "v${rawProxy}"`), undefined)
    : c.oneOf(o, 'proxy_protocol', path, PROXY_PROTOCOL_VERSIONS)
  const mode = c.oneOf(o, 'mode', path, PUBLISH_MODES) ?? 'tcp'
  if (port === undefined) return undefined
  return { port, balance, mode, ...(proxyProtocol !== undefined ? { proxyProtocol } : {}) }
}

function checkUpstreams(c: Checker, v: unknown, path: Path): Upstream[] {
  const ports = new Set<number>()
  return blockList(c, v, path, UPSTREAM_EXAMPLE, (o, at): Upstream | undefined => {
    c.fields(o, at, UPSTREAM_FIELDS, { destination_name: 'Shoal calls it "service"', port: 'the key is "local_port"' })
    const service = c.string(o, 'service', at, true)
    if (service !== undefined) {
      const problem = serviceNameProblem(service)
      if (problem !== null) c.add([...at, 'service'], problem)
    }
    const localPort = c.integer(o, 'local_port', at, 1, 65535)
    if (own(o, 'local_port') === undefined) c.add([...at, 'local_port'], 'is required: the port the task connects to on 127.0.0.1 (1-65535)')
    if (localPort !== undefined) {
      if (ports.has(localPort)) c.add([...at, 'local_port'], `local port ${localPort} is used by another upstream of this task`)
      ports.add(localPort)
    }
    return service === undefined || localPort === undefined ? undefined : { service, localPort }
  })
}

/** Group-wide rules of its services: ports the instances are reached on, where command checks run. */
function checkServicesOfGroup(c: Checker, services: readonly ServiceSpec[], tasks: readonly Task[], taskCount: number, labels: ReadonlySet<string> | undefined): void {
  if (tasks.length !== taskCount) return // a broken task block: its own errors say enough
  const published = new Set(tasks.flatMap((t) => (t.driver === 'docker' ? t.config.ports : [])))
  const byName = new Map(tasks.map((t) => [t.name, t]))
  const mains = tasks.filter((t) => t.lifecycle === undefined)
  for (const s of services) {
    const path = servicePaths.get(s) ?? []
    // The instance is reached on the port's host address: a docker task must publish it.
    const owner = s.task !== undefined ? byName.get(s.task) : undefined
    const docker = owner !== undefined ? owner.driver === 'docker' : tasks.every((t) => t.driver === 'docker')
    if (docker && labels?.has(s.port) && !published.has(s.port)) {
      c.add([...path, 'port'], `port ${JSON.stringify(s.port)} is not published by a docker task of the group; add it to config.ports`)
    }
    s.checks?.forEach((check, i) => {
      if (check.type === 'command' && s.task === undefined && mains.length !== 1) {
        c.add([...path, 'checks', i, 'type'], `a command check runs inside a task, and the group has ${mains.length} main tasks; declare this service in the task block it checks`)
      }
      if (check.type !== 'command' && check.port !== undefined && docker && labels?.has(check.port) && !published.has(check.port) && check.port !== s.port) {
        c.add([...path, 'checks', i, 'port'], `port ${JSON.stringify(check.port)} is not published by a docker task of the group; add it to config.ports`)
      }
    })
  }
}

/** Job-wide rules: service names unique, a port published once and not taken by a static port. */
function checkServicesOfJob(c: Checker, groups: readonly TaskGroup[]): void {
  const names = new Map<string, Path>()
  const published = new Map<number, { service: string; path: Path }>()
  const statics = new Map<number, string>()
  for (const g of groups) for (const p of g.ports) if (p.static !== undefined) statics.set(p.static, `${g.name}.${p.label}`)
  for (const g of groups) {
    for (const s of g.services ?? []) {
      const path = servicePaths.get(s) ?? []
      const first = names.get(s.name)
      if (first !== undefined) c.add([...path, 'name'], `service ${JSON.stringify(s.name)} is already declared at ${formatPath(first)}; service names are unique within a job`)
      else names.set(s.name, path)
      if (s.publish === undefined) continue
      const other = published.get(s.publish.port)
      if (other !== undefined) {
        c.add([...path, 'publish', 'port'], `port ${s.publish.port} is already published by service ${JSON.stringify(other.service)} (${formatPath(other.path)}); each service needs its own port`)
      } else {
        published.set(s.publish.port, { service: s.name, path })
      }
      const staticPort = statics.get(s.publish.port)
      if (staticPort !== undefined) c.add([...path, 'publish', 'port'], `port ${s.publish.port} is the static host port of ${staticPort}; the mesh listens on it on every agent, so pick another`)
    }
  }
}

// --- Constraints, affinities and spread -------------------------------------------

const CONSTRAINT_EXAMPLE = '[{"attribute": "${meta.rack}", "operator": "=", "value": "a"}]'
const AFFINITY_EXAMPLE = '[{"attribute": "${meta.disk}", "value": "ssd", "weight": 50}]'
const SPREAD_EXAMPLE = '[{"attribute": "${meta.rack}", "target": [{"value": "a", "percent": 70}]}]'

/** A list of blocks: each item checked by `check`, [] when absent or not an array. */
function blockList<T>(c: Checker, v: unknown, path: Path, example: string, check: (o: Obj, at: Path) => T | undefined): T[] {
  if (v === undefined) return []
  const list = c.array(v, path, `an array of blocks, like ${example}`)
  if (list === undefined) return []
  const out: T[] = []
  list.forEach((item: unknown, i) => {
    const o = c.object(item, [...path, i])
    const x = o === undefined ? undefined : check(o, [...path, i])
    if (x !== undefined) out.push(x)
  })
  return out
}

/** A string field with a hint to quote numbers and booleans. */
function stringValue(c: Checker, o: Obj, key: string, path: Path, required: boolean): string | undefined {
  const v = own(o, key)
  if (typeof v === 'number' || typeof v === 'boolean') {
    c.add([...path, key], `must be a string (got ${typeof v} ${describe(v)}); quote it: "${String(v)}"`)
    return undefined
  }
  return c.string(o, key, path, required)
}

/** The attribute of a rule: an interpolation of a node property. */
function checkAttribute(c: Checker, o: Obj, path: Path): string | undefined {
  const attribute = c.string(o, 'attribute', path, true)
  if (attribute === undefined) return undefined
  const t = parseTarget(attribute)
  if (typeof t === 'string') {
    c.add([...path, 'attribute'], t)
    return undefined
  }
  if (t.kind === 'literal') {
    const looksLike = /^(node|attr|meta)\./.test(attribute) ? ` (did you mean ${JSON.stringify(`\${${attribute}}`)}?)` : ''
    c.add([...path, 'attribute'], `must name a node property as one of ${TARGET_FORMS} (got ${describe(attribute)})${looksLike}`)
    return undefined
  }
  return attribute
}

/** The operator of a rule: `allowed`, "=" when absent; undefined (with an error) when invalid. */
function checkOperator<T extends string>(c: Checker, o: Obj, path: Path, allowed: readonly T[]): T | undefined {
  if (own(o, 'operator') === undefined) return allowed.find((a) => a === '=')
  return c.oneOf(o, 'operator', path, allowed)
}

/** The value of an attribute comparison: a literal or one interpolation, valid for the operator. */
function checkCompared(c: Checker, o: Obj, path: Path, operator: ConstraintOperator | undefined): string | undefined {
  if (operator === 'is_set' || operator === 'is_not_set') {
    if (own(o, 'value') !== undefined) c.add([...path, 'value'], `must be left out: ${operator} takes no value`)
    return ''
  }
  const value = stringValue(c, o, 'value', path, true)
  if (value === undefined) return undefined
  const t = parseTarget(value)
  if (typeof t === 'string') {
    c.add([...path, 'value'], t)
    return undefined
  }
  const problem = operator === undefined ? null : valueProblem(operator, value)
  if (problem !== null) {
    c.add([...path, 'value'], problem)
    return undefined
  }
  return value
}

function checkConstraints(c: Checker, v: unknown, path: Path): Constraint[] {
  return blockList(c, v, path, CONSTRAINT_EXAMPLE, (o, at) => checkConstraint(c, o, at))
}

function checkConstraint(c: Checker, o: Obj, path: Path): Constraint | undefined {
  c.fields(o, path, CONSTRAINT_FIELDS, CONSTRAINT_HINTS)
  if (own(o, 'operator') === 'distinct_hosts') {
    if (own(o, 'attribute') !== undefined) c.add([...path, 'attribute'], 'must be left out: distinct_hosts takes no attribute')
    const value = stringValue(c, o, 'value', path, false) ?? 'true'
    if (value !== 'true' && value !== 'false') c.add([...path, 'value'], `must be "true" or "false" for distinct_hosts (got ${describe(value)})`)
    return { attribute: '', operator: 'distinct_hosts', value }
  }
  const attribute = checkAttribute(c, o, path)
  const operator = checkOperator(c, o, path, CONSTRAINT_OPERATORS)
  if (operator === 'distinct_property') {
    const value = stringValue(c, o, 'value', path, false) ?? '1'
    if (!/^[1-9][0-9]{0,8}$/.test(value)) {
      c.add([...path, 'value'], `must be the number of allocations allowed per value, a positive integer as a string like "2" (got ${describe(value)})`)
      return undefined
    }
    return attribute === undefined ? undefined : { attribute, operator, value }
  }
  const value = checkCompared(c, o, path, operator)
  if (attribute === undefined || operator === undefined || value === undefined) return undefined
  return { attribute, operator, value }
}

function checkAffinities(c: Checker, v: unknown, path: Path): Affinity[] {
  return blockList(c, v, path, AFFINITY_EXAMPLE, (o, at) => checkAffinity(c, o, at))
}

function checkAffinity(c: Checker, o: Obj, path: Path): Affinity | undefined {
  c.fields(o, path, AFFINITY_FIELDS, AFFINITY_HINTS)
  const attribute = checkAttribute(c, o, path)
  const operator: AffinityOperator | undefined = checkOperator(c, o, path, AFFINITY_OPERATORS)
  const value = checkCompared(c, o, path, operator)
  let weight = c.integer(o, 'weight', path, -100, 100) ?? DEFAULT_AFFINITY_WEIGHT
  if (weight === 0) {
    c.add([...path, 'weight'], 'must not be 0 (an affinity of weight 0 does nothing; use -100..-1 to avoid, 1..100 to prefer)')
    weight = DEFAULT_AFFINITY_WEIGHT
  }
  if (attribute === undefined || operator === undefined || value === undefined) return undefined
  return { attribute, operator, value, weight }
}

function checkSpreads(c: Checker, v: unknown, path: Path): Spread[] {
  return blockList(c, v, path, SPREAD_EXAMPLE, (o, at) => checkSpread(c, o, at))
}

function checkSpread(c: Checker, o: Obj, path: Path): Spread | undefined {
  c.fields(o, path, SPREAD_FIELDS, { targets: 'the key is "target", an array like [{"value": "a", "percent": 70}]' })
  const attribute = checkAttribute(c, o, path)
  const weight = c.integer(o, 'weight', path, 1, 100) ?? DEFAULT_SPREAD_WEIGHT
  const targetsPath = [...path, 'target']
  const seen = new Set<string>()
  const targets = blockList(c, own(o, 'target'), targetsPath, '[{"value": "a", "percent": 70}]', (t, at): SpreadTarget | undefined => {
    c.fields(t, at, TARGET_FIELDS)
    const value = stringValue(c, t, 'value', at, true)
    if (value !== undefined && value.includes('${')) c.add([...at, 'value'], 'must be a plain value of the attribute, not an interpolation')
    else if (value !== undefined && seen.has(value)) c.add([...at, 'value'], `${JSON.stringify(value)} is targeted more than once`)
    if (value !== undefined) seen.add(value)
    const percent = c.integer(t, 'percent', at, 0, 100)
    if (own(t, 'percent') === undefined) c.add([...at, 'percent'], 'is required: the share of the allocations, 0..100')
    return value === undefined || percent === undefined ? undefined : { value, percent }
  })
  const sum = targets.reduce((n, t) => n + t.percent, 0)
  if (sum > 100) c.add(targetsPath, `percents add up to ${sum}; they must add up to at most 100`)
  return attribute === undefined ? undefined : { attribute, weight, targets }
}
