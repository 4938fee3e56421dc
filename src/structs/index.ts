export * from './job.ts'
export * from './alloc.ts'
export * from './node.ts'
export * from './eval.ts'
