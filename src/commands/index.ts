import Agent from './agent.ts'
import DeploymentFail from './deployment/fail.ts'
import DeploymentList from './deployment/list.ts'
import DeploymentPause from './deployment/pause.ts'
import DeploymentPromote from './deployment/promote.ts'
import DeploymentResume from './deployment/resume.ts'
import DeploymentStatus from './deployment/status.ts'
import AllocExec from './alloc/exec.ts'
import AllocLogs from './alloc/logs.ts'
import AllocStatus from './alloc/status.ts'
import JobHistory from './job/history.ts'
import JobPlan from './job/plan.ts'
import JobRevert from './job/revert.ts'
import JobRun from './job/run.ts'
import Keygen from './keygen.ts'
import Members from './members.ts'
import JobScale from './job/scale.ts'
import JobStatus from './job/status.ts'
import JobStop from './job/stop.ts'
import NodeDrain from './node/drain.ts'
import NodeEligibility from './node/eligibility.ts'
import NodeJoin from './node/join.ts'
import NodeStatus from './node/status.ts'
import VarGet from './var/get.ts'
import VarList from './var/list.ts'
import VarPut from './var/put.ts'
import VarRm from './var/rm.ts'
import ServiceInfo from './service/info.ts'
import ServiceList from './service/list.ts'
import Version from './version.ts'

// oclif "explicit" command strategy: ids use ":" and show with spaces.
export const COMMANDS = {
  agent: Agent,
  'job:run': JobRun,
  'job:status': JobStatus,
  'job:stop': JobStop,
  'job:scale': JobScale,
  'job:history': JobHistory,
  'job:revert': JobRevert,
  'job:plan': JobPlan,
  'deployment:list': DeploymentList,
  'deployment:status': DeploymentStatus,
  'deployment:promote': DeploymentPromote,
  'deployment:fail': DeploymentFail,
  'deployment:pause': DeploymentPause,
  'deployment:resume': DeploymentResume,
  'alloc:status': AllocStatus,
  'alloc:logs': AllocLogs,
  'alloc:exec': AllocExec,
  'node:status': NodeStatus,
  'node:join': NodeJoin,
  'node:drain': NodeDrain,
  'node:eligibility': NodeEligibility,
  keygen: Keygen,
  members: Members,
  'var:put': VarPut,
  'var:get': VarGet,
  'var:list': VarList,
  'var:rm': VarRm,
  'service:list': ServiceList,
  'service:info': ServiceInfo,
  version: Version,
}
