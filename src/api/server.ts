// The HTTP API every agent serves. Reads come from the local state machine;
// writes go through the agent's ClusterOps (the leader's propose seam).
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { JoinError, type Agent } from '../agent/agent.ts'
import { WriteError } from '../agent/ops.ts'
import { NoLeaderError } from '../agent/raft-proposer.ts'
import { NotLeaderError, OutcomeUnknownError } from '../raft/node.ts'
import { parseDuration, parseJobText } from '../jobspec/index.ts'
import type { StateStore } from '../fsm/state.ts'
import type { JobSpec } from '../structs/index.ts'
import { groupResources, MAX_VAR_VALUE_BYTES, specOf, varPathProblem } from '../structs/index.ts'
import type { LogStream } from '../runtime/driver.ts'
import { HttpError, Router, readJsonBody, readTextBody, sendError, sendJson, type Request } from './http.ts'
import { acceptUpgrade, EXEC_UPGRADE, FRAME, frame, FrameReader, proxyUpgrade, refuseUpgrade, sessionSpec } from './exec-session.ts'
import { planRoute } from './plan.ts'
import { checkPublishPorts, serviceRoutes } from './services.ts'
import { eventStream } from './events.ts'
import { allocDetail, allocStub, deploymentDetail, deploymentView, jobDetail, jobListItem } from './views.ts'
import { revertTarget } from '../agent/deployment-watcher.ts'
import { VERSION } from '../version.ts'

const MAX_BLOCKING_WAIT_MS = 5 * 60_000

function one<T>(rows: T[], what: string, id: string): T {
  if (rows.length === 0) throw new HttpError(404, `${what} "${id}" not found`)
  if (rows.length > 1) throw new HttpError(400, `${what} id prefix "${id}" matches ${rows.length} ${what}s; give more characters`, 'id')
  return rows[0]!
}

function varPath(raw: string | undefined): string {
  const path = raw ?? ''
  const problem = varPathProblem(path)
  if (problem) throw new HttpError(400, `path: ${problem}`, 'path')
  return path
}

/** A non-negative integer query parameter (cas=, check_index=), if given. */
function indexParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name)
  if (raw === null) return undefined
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0) throw new HttpError(400, `${name}: must be a non-negative integer (got "${raw}")`, name)
  return n
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body: must be a JSON object', 'body')
  return body as Record<string, unknown>
}

function deploymentOr404(state: StateStore, id: string) {
  return one(state.findByPrefix('deployments', id), 'deployment', id)
}

function jobOr404(state: StateStore, id: string) {
  const job = state.get('jobs', id)
  if (!job) throw new HttpError(404, `job "${id}" not found`)
  return job
}

/** A job that no ready node could ever hold is refused at submission, naming the field. */
function checkFitsSomeNode(state: StateStore, spec: JobSpec): void {
  const nodes = state.list('nodes').filter((n) => n.status === 'ready')
  if (nodes.length === 0) return
  for (const g of spec.groups) {
    const need = groupResources(g)
    for (const kind of ['memory', 'cpu'] as const) {
      const needed = kind === 'memory' ? need.memoryMB : need.cpu
      const largest = Math.max(...nodes.map((n) => (kind === 'memory' ? n.resources.memoryMB : n.resources.cpu)))
      if (needed <= largest) continue
      const unit = kind === 'memory' ? 'MB' : 'MHz'
      const biggest = [...g.tasks].sort((a, b) => kind === 'memory' ? b.resources.memoryMB - a.resources.memoryMB : b.resources.cpu - a.resources.cpu)[0]!
      const field = `job.${spec.id}.group.${g.name}.task.${biggest.name}.resources.${kind}`
      throw new HttpError(400, `${field}: group "${g.name}" needs ${needed} ${unit} of ${kind}, more than the largest node has (${largest} ${unit})`, field)
    }
  }
}

/** A node by name, id, or a unique start (or end, 4+ characters) of its id. */
function findNode(state: StateStore, id: string) {
  const byName = state.list('nodes').filter((n) => n.name === id)
  const suffix = id.replace(/^…/, '')
  const byEnd = state.list('nodes').filter((n) => suffix.length >= 4 && n.id.endsWith(suffix))
  return one(byName.length ? byName : byEnd.length ? byEnd : state.findByPrefix('nodes', id), 'node', id)
}

export const DEFAULT_DRAIN_DEADLINE_MS = 3_600_000

type DrainRequest =
  | { enable: true; deadlineMs: number | undefined; ignoreSystem: boolean }
  | { enable: false; markEligible: boolean }

/**
 * The body of POST /v1/node/:id/drain: {"enable": true, "deadline": "1h" | null (none),
 * "ignoreSystem": false} or {"enable": false, "markEligible": true}.
 */
function drainBody(raw: unknown): DrainRequest {
  const b = objectBody(raw)
  const known = ['enable', 'deadline', 'ignoreSystem', 'markEligible']
  for (const k of Object.keys(b)) if (!known.includes(k)) throw new HttpError(400, `${k}: unknown field (expected one of ${known.join(', ')})`, k)
  const bool = (k: string, dflt: boolean): boolean => {
    const v = b[k]
    if (v === undefined) return dflt
    if (typeof v !== 'boolean') throw new HttpError(400, `${k}: must be true or false (got ${JSON.stringify(v)})`, k)
    return v
  }
  if (b.enable === undefined) throw new HttpError(400, 'enable: is required (true starts a drain, false ends it)', 'enable')
  if (!bool('enable', false)) {
    if (b.deadline !== undefined || b.ignoreSystem !== undefined) throw new HttpError(400, 'deadline, ignoreSystem: only with "enable": true', b.deadline !== undefined ? 'deadline' : 'ignoreSystem')
    return { enable: false, markEligible: bool('markEligible', true) }
  }
  if (b.markEligible !== undefined) throw new HttpError(400, 'markEligible: only with "enable": false', 'markEligible')
  let deadlineMs: number | undefined = DEFAULT_DRAIN_DEADLINE_MS
  if (b.deadline === null) deadlineMs = undefined
  else if (b.deadline !== undefined) {
    try {
      deadlineMs = parseDuration(b.deadline as string)
    } catch {
      throw new HttpError(400, `deadline: must be a duration like "1h" or "30m", "0s" to stop everything at once, or null for none (got ${JSON.stringify(b.deadline)})`, 'deadline')
    }
  }
  return { enable: true, deadlineMs, ignoreSystem: bool('ignoreSystem', false) }
}

export class ApiServer {
  readonly #agent: Agent
  readonly #server: Server
  readonly #router = new Router()

  constructor(agent: Agent) {
    this.#agent = agent
    this.#routes()
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const m = this.#router.match(req.method ?? 'GET', url.pathname)
      if (m === null) return sendError(res, new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`))
      if (m === 'method') return sendError(res, new HttpError(405, `method ${req.method} not allowed on ${url.pathname}`))
      const request: Request = { raw: req, res, params: m.params, query: url.searchParams, body: () => readJsonBody(req), text: () => readTextBody(req) }
      const indexOf = m.options.index ?? (() => this.#agent.fsm.appliedIndex)
      const blocking = m.options.noBlocking ? Promise.resolve() : this.#blocking(request, indexOf)
      blocking
        .then(() => m.handler(request))
        .then((body) => {
          if (!res.headersSent && body !== undefined) {
            sendJson(res, 200, body, { 'x-shoal-index': String(indexOf(request)) })
          }
        })
        .catch((err: unknown) => sendError(res, toHttpError(err)))
    })
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined)
      this.#execSession(req, socket, head).catch((err: unknown) => {
        const e = toHttpError(err)
        refuseUpgrade(socket, e instanceof HttpError ? e : new HttpError(500, e instanceof Error ? e.message : String(e)))
      })
    })
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject)
        resolve(this.#server.address() as AddressInfo)
      })
    })
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }

  /** `?consistent` reads wait for a ReadIndex barrier; `?index=N&wait=30s` blocks until the state moves past N. */
  async #blocking(req: Request, indexOf: (req: Request) => number): Promise<void> {
    if (req.query.has('consistent') && req.raw.method === 'GET') await this.#agent.readBarrier()
    const index = req.query.get('index')
    if (index === null || req.raw.method !== 'GET') return
    const n = Number(index)
    if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `index: must be a non-negative integer (got "${index}")`, 'index')
    let wait = 60_000
    const w = req.query.get('wait')
    if (w !== null) {
      try {
        wait = Math.min(parseDuration(w), MAX_BLOCKING_WAIT_MS)
      } catch {
        throw new HttpError(400, `wait: must be a duration like "30s" (got "${w}")`, 'wait')
      }
    }
    const abort = new AbortController()
    req.raw.once('close', () => abort.abort())
    await this.#agent.fsm.waitUntil(() => indexOf(req) > n, wait, abort.signal)
  }

  #routes(): void {
    const agent = this.#agent
    const state = agent.fsm.state
    this.#router
      .on('GET', '/v1/agent/self', async () => {
        const r = agent.raft.status()
        return {
          name: agent.config.name, nodeId: agent.nodeId, http: agent.config.http, dns: agent.config.dns ?? null, version: VERSION, dataDir: agent.config.dataDir,
          raft: { role: r.role, term: r.term, leader: r.leader, commit: r.commit, applied: agent.raft.appliedIndex, voters: r.conf.voters, learners: r.conf.learners },
          stateIndex: agent.fsm.appliedIndex,
        }
      })
      .on('GET', '/v1/agent/mesh', async () => agent.mesh.status())
      .on('GET', '/v1/status/leader', async () => {
        const leader = agent.leaderMember()
        if (!leader) throw new HttpError(503, 'no cluster leader is known right now')
        return { leader: leader.http, nodeId: leader.id, name: leader.name }
      })
      .on('POST', '/v1/agent/join', async (req) => {
        const body = (await req.body()) as { peer?: unknown } | null
        const peer = body?.peer
        if (typeof peer !== 'string' || peer.trim() === '') throw new HttpError(400, 'peer: must be a multiaddr or host:port', 'peer')
        return agent.joinCluster(peer.trim())
      })
      .on('GET', '/v1/members', async () => agent.members().map((m) => ({
        name: m.name, id: m.id, address: m.addrs[0] ?? '', addrs: m.addrs, http: m.http,
        status: m.status, role: m.role, lastSeen: m.lastSeen,
      })))
      .on('GET', '/v1/jobs', async () => state.list('jobs').sort((a, b) => a.id.localeCompare(b.id)).map((j) => jobListItem(state, j)))
      .on('POST', '/v1/jobs', async (req) => {
        // The job file's own text: its errors carry line and column, and a key given twice is one.
        const result = parseJobText(await req.text(), 'body')
        if (!result.ok) {
          const first = result.errors[0]!
          throw new HttpError(400, result.errors.map((e) => `${e.field}: ${e.message}`).join('\n'), first.field, result.errors)
        }
        checkFitsSomeNode(state, result.spec)
        checkPublishPorts(state, result.spec)
        const { evalId, index } = await agent.ops.registerJob(result.spec, indexParam(req.query, 'check_index'))
        const job = state.get('jobs', result.spec.id)!
        return { jobId: job.id, evalId, index, version: job.version }
      })
      .on('POST', '/v1/job/:id/scale', async (req) => {
        const job = jobOr404(state, req.params.id!)
        const body = objectBody(await req.body())
        const group = body.group
        const count = body.count
        const g = job.groups.find((x) => x.name === group)
        if (typeof group !== 'string' || !g) {
          throw new HttpError(400, `group: job "${job.id}" has no group ${JSON.stringify(group)} (groups: ${job.groups.map((x) => x.name).join(', ')})`, 'group')
        }
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw new HttpError(400, `count: must be an integer ≥ 0 (got ${JSON.stringify(count)})`, 'count')
        if (job.type === 'system') throw new HttpError(400, `job "${job.id}" is a system job: it runs one allocation per node and has no count to scale`, 'group')
        if (g.scaling && (count < g.scaling.min || count > g.scaling.max)) {
          throw new HttpError(400, `count: ${count} is outside the scaling bounds of group "${g.name}" (min ${g.scaling.min}, max ${g.scaling.max}); change scaling.min/max in the job file to go beyond them`, 'count')
        }
        const message = body.message
        if (message !== undefined && (typeof message !== 'string' || message.length > 500)) throw new HttpError(400, 'message: must be a string of at most 500 characters', 'message')
        const spec = { ...specOf(job), groups: job.groups.map((x) => (x.name === group ? { ...x, count } : x)) }
        checkFitsSomeNode(state, spec)
        const { evalId, index } = await agent.ops.scaleGroup(job, group, count, {
          source: 'manual', reason: 'manual', message: message || `job scale: ${g.count} → ${count}`,
        })
        return { jobId: job.id, evalId, index, version: state.get('jobs', job.id)!.version }
      })
      .on('POST', '/v1/job/:id/revert', async (req) => {
        const job = jobOr404(state, req.params.id!)
        const version = objectBody(await req.body()).version
        const versions = state.jobVersions(job.id)
        const target = versions.find((v) => v.version === version)
        if (!target) {
          throw new HttpError(400, `version: job "${job.id}" has no version ${JSON.stringify(version)} (versions: ${versions.map((v) => v.version).join(', ')})`, 'version')
        }
        const { evalId, index } = await agent.ops.registerJob(specOf(target), job.modifyIndex)
        return { jobId: job.id, evalId, index, version: state.get('jobs', job.id)!.version, revertedTo: target.version }
      })
      .on('POST', '/v1/job/plan', (req) => planRoute(state, req))
      .on('GET', '/v1/job/:id', async (req) => jobDetail(state, jobOr404(state, req.params.id!)))
      .on('GET', '/v1/job/:id/allocations', async (req) =>
        state.allocsOfJob(jobOr404(state, req.params.id!).id).map((a) => allocStub(state, a)))
      .on('GET', '/v1/job/:id/versions', async (req) => state.jobVersions(jobOr404(state, req.params.id!).id))
      .on('DELETE', '/v1/job/:id', async (req) => {
        const job = jobOr404(state, req.params.id!)
        const purge = req.query.get('purge') === 'true'
        const { evalId, index } = await agent.ops.deregisterJob(job.id, purge)
        return { jobId: job.id, evalId, index }
      })
      .on('GET', '/v1/deployments', async (req) => {
        const job = req.query.get('job')
        const all = job !== null ? state.deploymentsOfJob(job) : state.list('deployments').sort((a, b) => b.createIndex - a.createIndex)
        return all.map((d) => deploymentView(state, d))
      })
      .on('GET', '/v1/deployment/:id', async (req) => deploymentDetail(state, deploymentOr404(state, req.params.id!)))
      .on('GET', '/v1/job/:id/deployment', async (req) => {
        const job = jobOr404(state, req.params.id!)
        const d = state.latestDeployment(job.id)
        if (!d) throw new HttpError(404, `job "${job.id}" has no deployment (only service jobs are deployed)`)
        return deploymentDetail(state, d)
      })
      .on('GET', '/v1/job/:id/deployments', async (req) => state.deploymentsOfJob(jobOr404(state, req.params.id!).id).map((d) => deploymentView(state, d)))
      .on('POST', '/v1/deployment/:id/promote', async (req) => {
        const d = deploymentOr404(state, req.params.id!)
        // The body is optional: {"groups": [...]} promotes only those groups.
        const body = req.raw.headers['content-length'] === '0' ? {} : await req.body()
        const groups = objectBody(body).groups
        if (groups !== undefined && (!Array.isArray(groups) || groups.length === 0 || !groups.every((g) => typeof g === 'string'))) {
          throw new HttpError(400, 'groups: must be a non-empty array of group names', 'groups')
        }
        const { index, evalId } = await agent.ops.promoteDeployment(d.id, groups as string[] | undefined)
        return { deploymentId: d.id, jobId: d.jobId, index, evalId }
      })
      .on('POST', '/v1/deployment/:id/fail', async (req) => {
        const d = deploymentOr404(state, req.params.id!)
        const autoRevert = Object.values(d.groups).some((g) => g.autoRevert)
        const target = autoRevert ? revertTarget(d, { versions: state.jobVersions(d.jobId), job: state.get('jobs', d.jobId) }) : undefined
        const description = `Failed by user${target ? `; rolling back to job version ${target.version}` : autoRevert ? '; no stable job version to revert to' : ''}`
        const { index, evalId } = await agent.ops.setDeploymentStatus(d.id, 'failed', description, target ? specOf(target) : undefined)
        return { deploymentId: d.id, jobId: d.jobId, index, ...(evalId ? { evalId } : {}), ...(target ? { revertedTo: target.version } : {}) }
      })
      .on('POST', '/v1/deployment/:id/pause', async (req) => {
        const d = deploymentOr404(state, req.params.id!)
        if (d.status !== 'running') throw new HttpError(409, `deployment ${d.id} is ${d.status}, not running: it cannot be paused`)
        const { index } = await agent.ops.setDeploymentStatus(d.id, 'paused', 'Deployment paused by user')
        return { deploymentId: d.id, jobId: d.jobId, index }
      })
      .on('POST', '/v1/deployment/:id/resume', async (req) => {
        const d = deploymentOr404(state, req.params.id!)
        if (d.status !== 'paused') throw new HttpError(409, `deployment ${d.id} is ${d.status}, not paused: nothing to resume`)
        const { index, evalId } = await agent.ops.setDeploymentStatus(d.id, 'running', 'Deployment resumed by user')
        return { deploymentId: d.id, jobId: d.jobId, index, ...(evalId ? { evalId } : {}) }
      })
      .on('GET', '/v1/evaluation/:id', async (req) => one(state.findByPrefix('evals', req.params.id!), 'evaluation', req.params.id!))
      .on('GET', '/v1/allocations', async () => state.list('allocs').map((a) => allocStub(state, a)))
      .on('GET', '/v1/allocation/:id', async (req) => allocDetail(state, one(state.findByPrefix('allocs', req.params.id!), 'allocation', req.params.id!)))
      .on('GET', '/v1/client/allocation/:id/logs', (req) => this.#logs(req))
      .on('POST', '/v1/client/allocation/:id/exec', (req) => this.#exec(req))
      .on('GET', '/v1/client/allocation/:id/stats', (req) => this.#stats(req))
      .on('GET', '/v1/vars', async (req) => {
        const prefix = req.query.get('prefix') ?? ''
        return state.list('vars').filter((v) => v.path.startsWith(prefix)).sort((a, b) => (a.path < b.path ? -1 : 1))
          .map(({ path, createIndex, modifyIndex, createTime, modifyTime }) => ({ path, createIndex, modifyIndex, createTime, modifyTime }))
      })
      .on('GET', '/v1/var/*path', async (req) => {
        const path = varPath(req.params.path)
        const v = state.get('vars', path)
        if (!v) throw new HttpError(404, `variable "${path}" not found`)
        return v
      })
      .on('PUT', '/v1/var/*path', async (req) => {
        const path = varPath(req.params.path)
        const cas = indexParam(req.query, 'cas')
        const body = await req.body()
        const value = (body as { value?: unknown } | null)?.value
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body: must be a JSON object like {"value": "..."}', 'body')
        if (typeof value !== 'string') throw new HttpError(400, `value: must be a string (got ${value === undefined ? 'nothing' : typeof value})`, 'value')
        if (Buffer.byteLength(value) > MAX_VAR_VALUE_BYTES) throw new HttpError(400, `value: must be at most ${MAX_VAR_VALUE_BYTES} bytes`, 'value')
        const modifyIndex = await agent.ops.putVar(path, value, cas)
        return { path, modifyIndex }
      })
      .on('DELETE', '/v1/var/*path', async (req) => {
        const path = varPath(req.params.path)
        const modifyIndex = await agent.ops.deleteVar(path, indexParam(req.query, 'cas'))
        return { path, modifyIndex }
      })
    serviceRoutes(this.#router, agent)
    this.#router.on('GET', '/v1/event/stream', (req) => eventStream(req, agent.events), { noBlocking: true })
    this.#router
      .on('GET', '/v1/nodes', async () => state.list('nodes').sort((a, b) => a.name.localeCompare(b.name)))
      .on('GET', '/v1/node/:id', async (req) => {
        const node = findNode(state, req.params.id!)
        return { ...node, allocations: state.allocsOfNode(node.id).map((a) => allocStub(state, a)) }
      })
      // Nomad's `system gc`: collect now whatever is finished, however recent.
      .on('PUT', '/v1/system/gc', async () => {
        const r = await agent.ops.collectGarbage(0)
        return { evals: r.evals.length, allocs: r.allocs.length, jobs: r.jobs.length, index: r.index }
      })
      .on('POST', '/v1/node/:id/eligibility', async (req) => {
        const node = findNode(state, req.params.id!)
        const eligibility = objectBody(await req.body()).eligibility
        if (eligibility !== 'eligible' && eligibility !== 'ineligible') {
          throw new HttpError(400, `eligibility: must be "eligible" or "ineligible" (got ${JSON.stringify(eligibility) ?? 'nothing'})`, 'eligibility')
        }
        const index = await agent.ops.setEligibility(node.id, eligibility === 'eligible')
        return { nodeId: node.id, name: node.name, eligibility, index }
      })
      .on('POST', '/v1/node/:id/drain', async (req) => {
        const node = findNode(state, req.params.id!)
        const spec = drainBody(await req.body())
        const index = spec.enable
          ? await agent.ops.drainNode(node.id, { deadlineMs: spec.deadlineMs, ignoreSystem: spec.ignoreSystem })
          : await agent.ops.endDrain(node.id, 'canceled', spec.markEligible)
        const after = state.get('nodes', node.id)!
        return { nodeId: node.id, name: node.name, index, drain: after.drain ?? null, eligible: after.eligible, wasDraining: node.drain !== undefined }
      })
  }

  #proxyLogs(req: Request, nodeId: string): Promise<undefined> {
    const node = this.#agent.fsm.state.get('nodes', nodeId)
    if (!node) throw new HttpError(404, `node ${nodeId} of the allocation is not registered`)
    if (node.status === 'down') throw new HttpError(503, `node ${node.name} is down; its logs are not reachable`)
    const url = new URL(req.raw.url ?? '', `http://${node.http}`)
    url.searchParams.set('proxied', '1')
    if (req.query.get('proxied') === '1') throw new HttpError(508, 'allocation moved while its logs were being proxied; retry')
    return proxyTo(req, url.toString())
  }

  /** An allocation's running task of this node, by name (the only one when not given). */
  #localTask(allocId: string, taskName: string | null | undefined, what: string) {
    const runner = this.#agent.client.runner(allocId)
    if (!runner) throw new HttpError(404, `${what} of allocation ${allocId} is not available: its tasks were removed`)
    let name = taskName
    if (!name) {
      const names = runner.taskNames
      if (names.length !== 1) throw new HttpError(400, `task: allocation has tasks ${names.join(', ')}; name one`, 'task')
      name = names[0]!
    }
    const task = runner.task(name)
    if (!task) throw new HttpError(404, `task "${name}" not found in allocation ${allocId} (tasks: ${runner.taskNames.join(', ')})`, 'task')
    return { name, task }
  }

  #proxyToNode(req: Request, nodeId: string, what: string): URL {
    const node = this.#agent.fsm.state.get('nodes', nodeId)
    if (!node) throw new HttpError(404, `node ${nodeId} of the allocation is not registered`)
    if (node.status === 'down') throw new HttpError(503, `node ${node.name} is down; ${what} is not reachable`)
    if (req.query.get('proxied') === '1') throw new HttpError(508, `allocation moved while the ${what} request was being proxied; retry`)
    const url = new URL(req.raw.url ?? '', `http://${node.http}`)
    url.searchParams.set('proxied', '1')
    return url
  }

  /**
   * Runs a command in a task. The answer streams as JSON lines: {"stdout": base64},
   * {"stderr": base64}, then {"exitCode": n} (and "timedOut": true) or {"error": "..."}.
   */
  async #exec(req: Request): Promise<undefined> {
    const state = this.#agent.fsm.state
    const alloc = one(state.findByPrefix('allocs', req.params.id!), 'allocation', req.params.id!)
    const raw = await req.body()
    const body = execBody(raw)
    if (alloc.nodeId !== this.#agent.nodeId) return proxyPost(req, this.#proxyToNode(req, alloc.nodeId, 'exec').toString(), raw)
    const { name, task } = this.#localTask(alloc.id, body.task, 'exec')
    const handle = task.handle
    if (!handle || task.state.state !== 'running') throw new HttpError(409, `task "${name}" is not running (${task.state.state})`, 'task')
    const driver = this.#agent.driver(handle.driver)
    const res = req.res
    const abort = new AbortController()
    res.once('close', () => abort.abort())
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    const line = (o: object) => {
      if (!res.writableEnded) res.write(JSON.stringify(o) + '\n')
    }
    try {
      const [program, ...args] = body.command
      const result = await driver.exec(handle, program!, args, {
        onOutput: (stream, chunk) => line({ [stream]: chunk.toString('base64') }),
        signal: abort.signal,
        ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
        ...(body.timeoutMs !== undefined ? { timeoutMs: body.timeoutMs } : {}),
      })
      line(result.timedOut ? { exitCode: result.exitCode, timedOut: true } : { exitCode: result.exitCode })
    } catch (err) {
      line({ error: err instanceof Error ? err.message : String(err) })
    }
    res.end()
    return undefined
  }

  /** `alloc exec -i -t`: see exec-session.ts for the protocol. */
  async #execSession(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const m = /^\/v1\/client\/allocation\/([^/]+)\/exec\/session$/.exec(url.pathname)
    if (!m) throw new HttpError(404, `no such endpoint: upgrade of ${req.method} ${url.pathname}`)
    if (req.headers.upgrade?.toLowerCase() !== EXEC_UPGRADE) throw new HttpError(400, `upgrade: must be "${EXEC_UPGRADE}"`, 'upgrade')
    const id = decodeURIComponent(m[1]!)
    const alloc = one(this.#agent.fsm.state.findByPrefix('allocs', id), 'allocation', id)
    const spec = sessionSpec(url.searchParams)
    if (alloc.nodeId !== this.#agent.nodeId) {
      const node = this.#agent.fsm.state.get('nodes', alloc.nodeId)
      if (!node) throw new HttpError(404, `node ${alloc.nodeId} of the allocation is not registered`)
      if (node.status === 'down') throw new HttpError(503, `node ${node.name} is down; exec is not reachable`)
      if (url.searchParams.get('proxied') === '1') throw new HttpError(508, 'allocation moved while the exec request was being proxied; retry')
      const target = new URL(`${url.pathname}${url.search}`, `http://${node.http}`)
      target.searchParams.set('proxied', '1')
      return proxyUpgrade(req, socket, head, target)
    }
    const { name, task } = this.#localTask(alloc.id, spec.task, 'exec')
    const handle = task.handle
    if (!handle || task.state.state !== 'running') throw new HttpError(409, `task "${name}" is not running (${task.state.state})`, 'task')
    const [program, ...args] = spec.command
    const session = await this.#agent.driver(handle.driver).execSession(handle, program!, args, spec)
    acceptUpgrade(socket)
    const reader = new FrameReader()
    const onData = (chunk: Buffer) => {
      let frames
      try {
        frames = reader.push(chunk)
      } catch {
        socket.destroy()
        return
      }
      for (const f of frames) {
        if (f.type === FRAME.stdin) session.stdin?.write(f.payload)
        else if (f.type === FRAME.stdinEnd) session.stdin?.end()
        else if (f.type === FRAME.resize) {
          const size = JSON.parse(f.payload.toString()) as { rows?: unknown; cols?: unknown }
          if (Number.isInteger(size.rows) && Number.isInteger(size.cols)) void session.resize(size.rows as number, size.cols as number)
        }
      }
    }
    if (head.length) onData(head)
    socket.on('data', onData)
    let done = false
    // The client went away (Ctrl-C, lost connection): the command ends with it.
    socket.once('close', () => {
      if (!done) session.kill()
    })
    const outputs = [session.stdout, ...(session.stderr ? [session.stderr] : [])]
    const drained = outputs.map((stream, i) => new Promise<void>((resolve) => {
      stream.on('data', (c: Buffer) => socket.write(frame(i === 0 ? FRAME.stdout : FRAME.stderr, c)))
      stream.once('end', resolve)
      stream.once('close', resolve)
      stream.once('error', () => resolve())
    }))
    const exitCode = await session.wait()
    await Promise.all(drained)
    done = true
    socket.end(frame(FRAME.exit, JSON.stringify({ exitCode })))
  }

  /**
   * One usage sample of each running task of the allocation, beside what it reserved:
   * {tasks: {<name>: {state, cpu: {percent, mhz}, memory: {rssBytes, usageBytes?}, reserved: {cpu, memoryMB}, timestamp} | {state, error}}}.
   */
  async #stats(req: Request): Promise<unknown> {
    const state = this.#agent.fsm.state
    const alloc = one(state.findByPrefix('allocs', req.params.id!), 'allocation', req.params.id!)
    if (alloc.nodeId !== this.#agent.nodeId) return proxyTo(req, this.#proxyToNode(req, alloc.nodeId, 'stats').toString())
    const runner = this.#agent.client.runner(alloc.id)
    if (!runner) throw new HttpError(404, `stats of allocation ${alloc.id} are not available: its tasks were removed`)
    const taskFilter = req.query.get('task')
    const names = taskFilter ? [this.#localTask(alloc.id, taskFilter, 'stats').name] : runner.taskNames
    const mhzPerCore = Number(state.get('nodes', this.#agent.nodeId)?.attributes['cpu.frequency']) || 1000
    const tasks: Record<string, unknown> = {}
    await Promise.all(names.map(async (name) => {
      const task = runner.task(name)!
      const spec = task.spec.task
      const reserved = { cpu: spec.resources.cpu, memoryMB: spec.resources.memoryMB }
      const handle = task.handle
      if (!handle || task.state.state !== 'running') {
        tasks[name] = { state: task.state.state, reserved }
        return
      }
      try {
        const s = await this.#agent.driver(handle.driver).stats(handle)
        tasks[name] = {
          state: task.state.state,
          cpu: { percent: round(s.cpuPercent, 2), mhz: round((s.cpuPercent / 100) * mhzPerCore, 1) },
          memory: { rssBytes: s.memoryRssBytes, ...(s.memoryUsageBytes !== undefined ? { usageBytes: s.memoryUsageBytes } : {}) },
          reserved, timestamp: s.timestamp,
        }
      } catch (err) {
        tasks[name] = { state: task.state.state, reserved, error: err instanceof Error ? err.message : String(err) }
      }
    }))
    return { allocId: alloc.id, tasks }
  }

  async #logs(req: Request): Promise<undefined> {
    const state = this.#agent.fsm.state
    const alloc = one(state.findByPrefix('allocs', req.params.id!), 'allocation', req.params.id!)
    const type = req.query.get('type') ?? 'stdout'
    if (type !== 'stdout' && type !== 'stderr') throw new HttpError(400, `type: must be "stdout" or "stderr" (got "${type}")`, 'type')
    const tailText = req.query.get('tail')
    const tail = tailText === null ? undefined : Number(tailText)
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new HttpError(400, `tail: must be a non-negative integer (got "${tailText}")`, 'tail')
    const follow = req.query.get('follow') === 'true'
    if (alloc.nodeId !== this.#agent.nodeId) return this.#proxyLogs(req, alloc.nodeId)
    const runner = this.#agent.client.runner(alloc.id)
    if (!runner) throw new HttpError(404, `logs of allocation ${alloc.id} are no longer available: its tasks were removed`)
    let taskName = req.query.get('task')
    if (!taskName) {
      const names = runner.taskNames
      if (names.length !== 1) throw new HttpError(400, `task: allocation has tasks ${names.join(', ')}; name one`, 'task')
      taskName = names[0]!
    }
    const task = runner.task(taskName)
    if (!task) throw new HttpError(404, `task "${taskName}" not found in allocation ${alloc.id} (tasks: ${runner.taskNames.join(', ')})`, 'task')
    const handle = task.handle
    if (!handle) throw new HttpError(404, `task "${taskName}" has not started yet`, 'task')
    const driver = this.#agent.driver(handle.driver)
    const stream = await driver.logs(handle, { stream: type as LogStream, follow, ...(tail !== undefined ? { tail } : {}) })
    const res = req.res
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    req.raw.once('close', () => stream.destroy())
    stream.on('error', () => res.end())
    stream.pipe(res)
    return undefined
  }
}

/** The node's own agent runs the allocation: send the request there and stream its answer back. */
async function proxyPost(req: Request, url: string, body: unknown): Promise<undefined> {
  const abort = new AbortController()
  req.raw.once('close', () => abort.abort())
  let upstream: Response
  try {
    upstream = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: abort.signal })
  } catch (err) {
    throw new HttpError(502, `cannot reach the agent at ${new URL(url).host}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`)
  }
  req.res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' })
  if (!upstream.body) return void req.res.end()
  try {
    for await (const chunk of upstream.body) req.res.write(chunk)
  } catch {
    // the client went away or the upstream closed: end quietly
  }
  req.res.end()
  return undefined
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** The body of an exec request, checked. */
function execBody(body: unknown): { task?: string; command: string[]; stdin?: Buffer; timeoutMs?: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body: must be a JSON object like {"task": "web", "command": ["ls", "-l"]}', 'body')
  }
  const b = body as Record<string, unknown>
  const command = b.command
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string') || command[0] === '') {
    throw new HttpError(400, 'command: must be a non-empty array of strings, the program first', 'command')
  }
  const out: { task?: string; command: string[]; stdin?: Buffer; timeoutMs?: number } = { command: command as string[] }
  if (b.task !== undefined) {
    if (typeof b.task !== 'string' || b.task === '') throw new HttpError(400, 'task: must be a task name', 'task')
    out.task = b.task
  }
  if (b.stdin !== undefined) {
    if (typeof b.stdin !== 'string') throw new HttpError(400, 'stdin: must be a base64 string', 'stdin')
    out.stdin = Buffer.from(b.stdin, 'base64')
  }
  if (b.timeout !== undefined) {
    try {
      out.timeoutMs = parseDuration(b.timeout as string)
    } catch {
      throw new HttpError(400, `timeout: must be a duration like "30s" (got ${JSON.stringify(b.timeout)})`, 'timeout')
    }
  }
  return out
}

/** The node's own agent has the logs: stream them from there. */
async function proxyTo(req: Request, url: string): Promise<undefined> {
  const abort = new AbortController()
  req.raw.once('close', () => abort.abort())
  let upstream: Response
  try {
    upstream = await fetch(url, { signal: abort.signal })
  } catch (err) {
    throw new HttpError(502, `cannot reach the agent at ${new URL(url).host}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`)
  }
  req.res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' })
  if (!upstream.body) return void req.res.end()
  try {
    for await (const chunk of upstream.body) req.res.write(chunk)
  } catch {
    // the client went away or the upstream closed: end quietly
  }
  req.res.end()
  return undefined
}

function toHttpError(err: unknown): unknown {
  if (err instanceof JoinError) return new HttpError(400, err.message, 'peer')
  if (err instanceof NoLeaderError || err instanceof NotLeaderError) return new HttpError(503, err.message, undefined, undefined, { retry: true })
  if (err instanceof OutcomeUnknownError) return new HttpError(503, err.message, undefined, undefined, { outcome: 'unknown' })
  if ((err as { name?: string })?.name === 'RemoteError') {
    const code = (err as { code: string }).code
    if (code === 'outcome-unknown' || code === 'timeout') return new HttpError(503, (err as Error).message, undefined, undefined, { outcome: 'unknown' })
    if (code === 'not-leader' || code === 'no-leader') return new HttpError(503, (err as Error).message, undefined, undefined, { retry: true })
  }
  if (err instanceof WriteError) {
    const status = err.code === 'not-found' ? 404 : err.code === 'conflict' ? 409 : 400
    return new HttpError(status, err.message, undefined, undefined, err.current !== undefined ? { modifyIndex: err.current } : {})
  }
  return err
}
