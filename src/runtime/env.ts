// The environment a task sees: SHOAL_* variables about its allocation, and the
// job's env with ${SHOAL_*} references interpolated.
import type { Allocation, Task } from '../structs/index.ts'

export function taskEnv(alloc: Allocation, task: Task, nodeId: string): Record<string, string> {
  const env: Record<string, string> = {
    SHOAL_ALLOC_ID: alloc.id,
    SHOAL_ALLOC_NAME: alloc.name,
    SHOAL_ALLOC_INDEX: String(alloc.index),
    SHOAL_JOB_ID: alloc.jobId,
    SHOAL_GROUP_NAME: alloc.group,
    SHOAL_TASK_NAME: task.name,
    SHOAL_NODE_ID: nodeId,
    SHOAL_CPU_LIMIT: String(task.resources.cpu),
    SHOAL_MEMORY_LIMIT: String(task.resources.memoryMB),
  }
  if (task.resources.memoryMaxMB !== undefined) env.SHOAL_MEMORY_MAX_LIMIT = String(task.resources.memoryMaxMB)
  for (const p of alloc.resources.ports) {
    env[`SHOAL_PORT_${p.label}`] = String(task.driver === 'docker' ? p.to : p.value)
    env[`SHOAL_HOST_PORT_${p.label}`] = String(p.value)
    env[`SHOAL_IP_${p.label}`] = p.hostIp
    env[`SHOAL_ADDR_${p.label}`] = `${p.hostIp}:${p.value}`
  }
  for (const [k, v] of Object.entries(task.env)) {
    env[k] = v.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => env[name] ?? whole)
  }
  return env
}
