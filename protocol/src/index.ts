// Public surface of the wire contract shared by agent and aggregator.

export * from './histogram.ts'
export * from './latency.ts'
export * from './reasons.ts'
export * from './probes.ts'
export * from './messages.ts'
export * from './validate.ts'
export * from './errors.ts'
export * from './duration.ts'
export * from './features.ts'
export * from './close-codes.ts'
export * from './waiting-connections.ts'
