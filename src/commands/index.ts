import Agent from './agent.ts'
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
  'alloc:status': AllocStatus,
  'alloc:logs': AllocLogs,
  'alloc:exec': AllocExec,
  'node:status': NodeStatus,
  'node:join': NodeJoin,
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
