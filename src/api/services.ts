// Service catalog endpoints: GET /v1/services, GET /v1/service/:name (blocking
// on the catalog index, as Consul's), and the publish-port check of a job.
import type { Agent } from '../agent/agent.ts'
import type { StateStore } from '../fsm/state.ts'
import type { JobSpec } from '../structs/index.ts'
import { SERVICE_NAME_RE } from '../structs/index.ts'
import { HttpError, type Request, type Router } from './http.ts'

/** Where a service of a normalised spec was declared, as the job file's field path. */
export function serviceField(spec: JobSpec, group: string, position: number): string {
  const g = spec.groups.find((x) => x.name === group)
  const s = g?.services?.[position]
  if (!g || !s) return `job.${spec.id}.group.${group}.service`
  const at = g.services!.slice(0, position).filter((x) => x.task === s.task).length
  return s.task === undefined ? `job.${spec.id}.group.${group}.service[${at}]` : `job.${spec.id}.group.${group}.task.${s.task}.service[${at}]`
}

/** A port another job's service publishes cannot be published again (the FSM refuses it too). */
export function checkPublishPorts(state: StateStore, spec: JobSpec): void {
  const taken = new Map(state.publishedPorts().filter((p) => p.jobId !== spec.id).map((p) => [p.port, p]))
  for (const g of spec.groups) {
    g.services?.forEach((s, i) => {
      const other = s.publish && taken.get(s.publish.port)
      if (!other) return
      const field = `${serviceField(spec, g.name, i)}.publish.port`
      throw new HttpError(409, `${field}: port ${other.port} is already published by service "${other.service.name}" of job "${other.jobId}"`, field)
    })
  }
}

function serviceName(req: Request): string {
  const name = req.params.name!
  if (!SERVICE_NAME_RE.test(name)) {
    throw new HttpError(400, `name: ${JSON.stringify(name)} is not a service name (lower-case letters, digits and "-", at most 63 characters)`, 'name')
  }
  return name
}

export function serviceRoutes(router: Router, agent: Agent): void {
  const state = agent.fsm.state
  // An index is never 0 (a client would block on nothing): before any service, the applied index.
  const catalogIndex = () => state.catalogIndex || Math.max(1, agent.fsm.appliedIndex)
  router
    .on('GET', '/v1/services', async () => state.services(), { index: catalogIndex })
    .on('GET', '/v1/service/:name', async (req) => {
      let instances = state.serviceInstances(serviceName(req))
      if (req.query.has('passing') && req.query.get('passing') !== 'false') instances = instances.filter((i) => i.healthy)
      const tag = req.query.get('tag')
      if (tag !== null) instances = instances.filter((i) => i.tags.includes(tag))
      return instances
    }, { index: (req) => state.serviceIndex(serviceName(req)) || catalogIndex() })
}
