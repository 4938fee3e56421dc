// Builders for the cores' unit tests: jobs, nodes, allocations, evaluations.
import type { ApplyResult, Command, NewAlloc, NewEval, NewNode } from '../../src/fsm/commands.ts'
import { applyCommand, StateStore } from '../../src/fsm/index.ts'
import type { SchedulerState } from '../../src/scheduler/index.ts'
import type { Allocation, Evaluation, Job, JobSpec, Node, TaskGroup } from '../../src/structs/index.ts'

export function group(name: string, count: number, over: Partial<TaskGroup> = {}): TaskGroup {
  return {
    name, count, ports: [{ label: 'http', to: 80 }],
    restart: { attempts: 2, intervalMs: 60_000, delayMs: 1_000, mode: 'fail' },
    tasks: [{
      name: 'main', driver: 'docker', env: {}, killTimeoutMs: 5_000,
      config: { image: 'img', args: [], ports: ['http'] }, resources: { cpu: 100, memoryMB: 64 },
    }],
    ...over,
  }
}

export function spec(id: string, groups: TaskGroup[], over: Partial<JobSpec> = {}): JobSpec {
  return { id, type: 'service', priority: 50, groups, ...over }
}

export function job(s: JobSpec, over: Partial<Job> = {}): Job {
  return { ...s, version: 0, stop: false, submitTime: 0, createIndex: 1, modifyIndex: 1, ...over }
}

export function newNode(name: string, over: Partial<NewNode> = {}): NewNode {
  return {
    id: `id-${name}`, name, address: '127.0.0.1', http: '127.0.0.1:4680', status: 'ready', statusDescription: '',
    eligible: true, drivers: ['docker', 'exec'], resources: { cpu: 1000, memoryMB: 1024 },
    attributes: {}, meta: {}, portRange: { min: 20000, max: 20009 }, ...over,
  }
}

export function node(name: string, over: Partial<Node> = {}): Node {
  return { ...newNode(name), createIndex: 1, modifyIndex: 1, ...over }
}

export function newEval(id: string, jobId: string, over: Partial<NewEval> = {}): NewEval {
  return { id, jobId, triggeredBy: 'job-register', status: 'pending', statusDescription: '', failedGroups: {}, createTime: 0, modifyTime: 0, ...over }
}

export function evaluation(id: string, jobId: string, over: Partial<Evaluation> = {}): Evaluation {
  return { ...newEval(id, jobId), createIndex: 1, modifyIndex: 1, ...over }
}

export function alloc(id: string, j: Job, groupName: string, index: number, nodeId: string, over: Partial<Allocation> = {}): Allocation {
  const a: NewAlloc = {
    id, name: `${j.id}.${groupName}[${index}]`, jobId: j.id, jobVersion: j.version, group: groupName, index, nodeId, evalId: 'e0',
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'running', clientDescription: '', taskStates: {},
    resources: { cpu: 100, memoryMB: 64, ports: [{ label: 'http', value: 20000 + index, to: 80, hostIp: '127.0.0.1' }] },
    rescheduleCount: 0, createTime: 0, modifyTime: 0,
  }
  return { ...a, createIndex: 1, modifyIndex: 1, ...over }
}

/** Sequential ids: deterministic plans. */
export function idSource(prefix = 'a'): () => string {
  let n = 0
  return () => `${prefix}${++n}`
}

/** The scheduler's view of plain arrays (also a drainer's: it reads a subset). */
export function schedulerState(jobs: Job[], nodes: Node[], allocs: Allocation[] = [], evals: Evaluation[] = []): SchedulerState {
  return {
    nodes: () => [...nodes],
    job: (id) => jobs.find((j) => j.id === id),
    jobVersion: (id, v) => jobs.find((j) => j.id === id && j.version === v),
    allocsOfJob: (id) => allocs.filter((a) => a.jobId === id),
    allocsOfNode: (id) => allocs.filter((a) => a.nodeId === id),
    evalsOfJob: (id) => evals.filter((e) => e.jobId === id),
  }
}

/**
 * A state store that commands are applied to at increasing indexes, as the
 * FSM does: `apply` answers the command's result, `applyOk` throws on a refusal.
 */
export function fsmStore(): { state: StateStore; apply(cmd: Command): ApplyResult; applyOk(cmd: Command): void } {
  const state = new StateStore()
  let index = 0
  const apply = (cmd: Command): ApplyResult => {
    const { changes, result } = applyCommand(state, ++index, cmd)
    state.applyChanges(changes, index)
    return result
  }
  const applyOk = (cmd: Command): void => {
    const result = apply(cmd)
    if (!result.ok) throw new Error(result.error)
  }
  return { state, apply, applyOk }
}
