// Entry point: load the configuration (one clear line on stderr and exit 78, EX_CONFIG, when it is wrong), then serve.

import pino from 'pino'
import { startAggregator } from './app.ts'
import { loadConfig } from './config.ts'
import { AggregatorError, ERR_CONFIG, ERR_SHUTDOWN } from './errors.ts'

let config
try {
  config = loadConfig(process.env, process.argv.slice(2))
} catch (err) {
  const code = err instanceof AggregatorError ? err.code : ERR_CONFIG
  process.stderr.write(`pingfleet-aggregator: ${code}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(78) // EX_CONFIG, as the agent
}

const log = pino({ level: config.logLevel, base: { component: 'aggregator' }, redact: ['req.headers.authorization'] })
const aggregator = await startAggregator(config, log)
log.info({ address: aggregator.address(), groupLabel: config.groupLabel }, 'aggregator listening')

let stopping = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    aggregator.close().then(() => process.exit(0), err => {
      log.error({ err, code: ERR_SHUTDOWN }, 'shutdown failed')
      process.exit(1)
    })
  })
}
