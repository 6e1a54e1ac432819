// Public surface of the agent package, for tests and the local fleet script.

export { startAgent, podTargets, type AgentHandle } from './agent.ts'
export { loadConfig, parseLabels, OPTIONS, configSchema, type AgentConfig } from './config.ts'
export { classifyError, classifyStatus, isTimeoutReason, type Classified, type Phase } from './classify.ts'
export * from './errors.ts'
export { LoopLag } from './loop-lag.ts'
export type { Probe, ProbeResult, Target, Phases } from './probe.ts'
export { createPodProbe, type PodTarget } from './probes/pod.ts'
export { Results, type Window } from './results.ts'
export { Scheduler, type SchedulerOptions } from './scheduler.ts'
export { buildServer, MAX_PING_SIZE, type AgentStatus, type Identity } from './server.ts'
export { Uplink, backoffDelay, streamUrl, STREAM_PATH, type UplinkOptions, type UplinkStatus } from './uplink.ts'
