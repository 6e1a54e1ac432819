// Process entry point (`node agent/src/main.ts`): size the libuv threadpool, read the config,
// start the agent, and turn SIGTERM into a clean shutdown. Everything else lives in agent.ts.

// dns.lookup runs on the libuv threadpool (4 threads by default), and the pool's size is fixed at its
// first use. Size it here, before any module that could touch it is loaded — hence the dynamic imports
// below (lookup-pool.ts itself only imports). An explicit UV_THREADPOOL_SIZE in the environment wins.
import { sizeThreadpool } from './lookup-pool.ts'
const threadpool = sizeThreadpool()

const { loadConfig, printableConfig } = await import('./config.ts')
const { AgentError, AGENT_ERR_SHUTDOWN } = await import('./errors.ts')

let config
try {
  config = loadConfig(process.env, process.argv.slice(2))
} catch (err) {
  if (!(err instanceof AgentError)) throw err
  // One line, for a human reading `kubectl logs`: code, variable, value, what was expected.
  process.stderr.write(`${err.code}: ${err.message}\n`)
  process.exit(78) // EX_CONFIG
}

const { pino } = await import('pino')
const { startAgent } = await import('./agent.ts')

const logger = pino({
  level: config.logLevel,
  base: { component: 'agent', node: config.nodeName },
  // A second line of defence: what the code shows is already redacted (redact.ts, printableConfig).
  redact: {
    paths: ['token', '*.token', 'config.token', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization'],
    censor: '[redacted]'
  }
})
logger.info({ config: printableConfig(config), threadpool }, 'configuration')

let agent: Awaited<ReturnType<typeof startAgent>>
try {
  agent = await startAgent(config, logger)
} catch (err) {
  logger.fatal({ err, code: (err as { code?: unknown }).code }, 'agent failed to start')
  process.exit(1)
}

let stopping = false
const stop = (signal: string): void => {
  if (stopping) return
  stopping = true
  logger.info({ signal }, 'shutting down')
  // A hung shutdown must not outlive the pod's grace period.
  setTimeout(() => process.exit(1), config.shutdownTimeoutMs + config.shutdownDrainMs + 2000).unref()
  agent.shutdown().then(() => process.exit(0), err => {
    logger.error({ err, code: AGENT_ERR_SHUTDOWN }, 'shutdown failed')
    process.exit(1)
  })
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
