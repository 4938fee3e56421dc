// Helpers for integration tests that need the real Docker engine.
import Docker from 'dockerode'

export const DOCKER_SOCKET = '/var/run/docker.sock'
export const TEST_IMAGE = process.env.SHOAL_TEST_IMAGE ?? 'shoal-test/busybox:latest'

/**
 * Returns a client for the local engine, or throws (failing the calling test) with a
 * message that says how to get one. Tests that need Docker never skip.
 */
export async function requireDocker(): Promise<Docker> {
  const docker = new Docker({ socketPath: DOCKER_SOCKET })
  const hint = 'run "bash scripts/setup-docker.sh"'
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()),
    ])
  } catch (err) {
    throw new Error(`Docker engine not reachable at ${DOCKER_SOCKET}: ${hint} (${(err as Error).message})`)
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect()
  } catch {
    throw new Error(`test image ${TEST_IMAGE} is missing: ${hint}`)
  }
  return docker
}

/** Force-removes every container labelled with `allocId` (whatever a test left behind). */
export async function removeAllocContainers(docker: Docker, allocId: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`shoal.alloc=${allocId}`] } })
  await Promise.all(
    list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)),
  )
}

/** Containers labelled with `allocId`. */
export async function allocContainers(docker: Docker, allocId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`shoal.alloc=${allocId}`] } })
}
