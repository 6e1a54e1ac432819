// The aggregator's own ingest counters, kept as prom-client metrics.

import { readdirSync } from 'node:fs'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { StoreStats } from './store/store.ts'

export class SelfMetrics {
  private readonly reports: Counter
  private readonly cells: Counter
  private readonly expired: Counter
  private readonly duplicates: Counter
  private readonly missedReports: Counter
  private readonly rejects: Counter<'code'>
  private readonly duplicateNodes: Counter<'node'>
  readonly connected: Gauge

  constructor (registry: Registry, connected: () => number, stores: () => Record<string, StoreStats> = () => ({})) {
    this.reports = new Counter({ name: 'pingfleet_ingest_reports_total', help: 'Reports accepted from agents.', registers: [registry] })
    this.cells = new Counter({ name: 'pingfleet_ingest_cells_total', help: 'Per-target result cells accepted from agents.', registers: [registry] })
    this.expired = new Counter({ name: 'pingfleet_ingest_expired_cells_total', help: 'Accepted cells older than the longest window, so not stored.', registers: [registry] })
    this.duplicates = new Counter({ name: 'pingfleet_ingest_duplicate_reports_total', help: 'Reports dropped because that agent boot and seq were already applied.', registers: [registry] })
    this.missedReports = new Counter({
      name: 'pingfleet_ingest_missed_reports_total',
      help: 'Reports that never arrived: gaps in an agent boot\'s seqs (dropped from its full buffer during an outage).',
      registers: [registry]
    })
    this.rejects = new Counter({ name: 'pingfleet_ingest_rejected_total', help: 'Agent connections refused or closed, by error code.', labelNames: ['code'], registers: [registry] })
    this.duplicateNodes = new Counter({
      name: 'pingfleet_ingest_duplicate_node_claims_total',
      help: 'Hellos for a node another agent process (another bootId) held: one of the two was told to back off (close 4009).',
      labelNames: ['node'],
      registers: [registry]
    })
    this.connected = new Gauge({
      name: 'pingfleet_ingest_connected_agents',
      help: 'Agent websockets currently open.',
      registers: [registry],
      collect () { this.set(connected()) }
    })
    // Three of the Prometheus process collector's standard series, not prom-client's ~100 default ones:
    // what a soak or a leak alert needs, at a fixed cost.
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      registers: [registry],
      collect () { this.set(process.memoryUsage.rss()) }
    })
    new Gauge({
      name: 'nodejs_heap_size_used_bytes',
      help: 'V8 heap in use, bytes.',
      registers: [registry],
      collect () { this.set(process.memoryUsage().heapUsed) }
    })
    new Gauge({
      name: 'process_open_fds',
      help: 'Open file descriptors (Linux; absent elsewhere).',
      registers: [registry],
      collect () {
        try {
          this.set(readdirSync('/proc/self/fd').length)
        } catch {}
      }
    })
    new Gauge({
      name: 'pingfleet_ingest_store_bytes',
      help: 'Bytes held by the sliding-window stores (node: per node and target; group: per group pair).',
      labelNames: ['store'],
      registers: [registry],
      collect () { for (const [store, stats] of Object.entries(stores())) this.set({ store }, stats.bytes) }
    })
    new Gauge({
      name: 'pingfleet_ingest_store_cells',
      help: 'Cells (source, probe kind, target) the stores know.',
      labelNames: ['store'],
      registers: [registry],
      collect () { for (const [store, stats] of Object.entries(stores())) this.set({ store }, stats.cells) }
    })
  }

  report (cells: number, expired: number): void {
    this.reports.inc()
    this.cells.inc(cells)
    if (expired > 0) this.expired.inc(expired)
  }

  duplicate (): void { this.duplicates.inc() }

  /** `count` reports of one agent boot that never arrived (a seq gap). */
  missed (count: number): void { this.missedReports.inc(count) }

  rejected (code: string): void { this.rejects.inc({ code }) }

  duplicateNode (node: string): void { this.duplicateNodes.inc({ node }) }
}
