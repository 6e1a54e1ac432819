// The matrix as the API answers it: chooses the store and grouping for a query (by node, by the
// group label from the group store, pre-summed at ingest, or by any other label from the node store,
// regrouped), applies its filters and shapes the answer (MatrixAnswer). matrix.ts builds the cells.

import { formatDuration, PEER_PROBE_KINDS, type ProbeKind } from '@pingfleet/protocol'
import { AggregatorError, ERR_MATRIX_TOO_LARGE } from '../errors.ts'
import { BY_NODE, type Fleet } from '../fleet/fleet.ts'
import { peerNode } from '../store/ingest.ts'
import type { Store } from '../store/store.ts'
import { buildMatrix, type MatrixCell } from './matrix.ts'

export interface MatrixSources {
  nodes: Store
  groups: Store
  fleet: Fleet
  /** PINGFLEET_MAX_MATRIX_CELLS: larger answers are refused with a hint to filter. */
  maxMatrixCells?: number
  now: () => number
}

export interface MatrixQuery {
  probe: ProbeKind
  /** BY_NODE, the group label, or any other label key. */
  groupBy: string
  windowMs: number
  /** Only the row (src) or column (dst) with this name. */
  src?: string
  dst?: string
  /** Only cells with at least one error. */
  failing: boolean
}

/** The answer of GET /api/v1/matrix, fields in the order of its schema (it is serialised with JSON.stringify). */
export interface MatrixAnswer {
  probe: ProbeKind
  groupBy: string
  window: string
  /** The span the cells really cover (ISO 8601; see Store.read), and when the answer was made. */
  from: string
  to: string
  generatedAt: string
  /**
   * Whether cells carry `phases`: for kinds in PHASE_PROBE_KINDS, at any window by the group label
   * (group store), and by node or another label only up to the node store's exact window (1m at a
   * 5 s interval), past which its slots have dropped them.
   */
  phasesIncluded: boolean
  rows: string[]
  cols: string[]
  cells: MatrixCell[]
}

const peerKinds = new Set<string>(PEER_PROBE_KINDS)

/**
 * The matrix for `query` at `sources.now()`. Filters apply to row and column names before any data
 * is read, so a row costs a row. Throws an AggregatorError (PINGFLEET_ERR_MATRIX_TOO_LARGE, 400)
 * when more than `maxMatrixCells` cells would be built.
 */
export function matrixView (sources: MatrixSources, query: MatrixQuery): MatrixAnswer {
  const { probe, groupBy, windowMs, src, dst, failing } = query
  const now = sources.now()
  const only = (wanted: string | undefined, name: string): string | null => wanted === undefined || wanted === name ? name : null
  const keep = failing ? (cell: MatrixCell) => cell.errors > 0 : undefined
  const limit = {
    maxCells: sources.maxMatrixCells,
    tooLarge: (cells: number) => new AggregatorError(ERR_MATRIX_TOO_LARGE,
      `the matrix has ${cells} cells, more than PINGFLEET_MAX_MATRIX_CELLS=${sources.maxMatrixCells}: ask for one row (src=), one column (dst=), failing=true, or group by a label`, 400)
  }
  let result
  if (groupBy === sources.fleet.groupLabel) {
    // Pre-summed per group at ingest: cheap at any fleet size.
    result = buildMatrix(sources.groups, { probe, windowMs, now, rowOf: name => only(src, name), colOf: name => only(dst, name), keep, failingOnly: failing, ...limit })
  } else {
    const labelOf = sources.fleet.grouping(groupBy)
    // By node, an mtu column keeps its size (`node/8500`); by a label, sizes fold into the peer's group.
    const colOf = (target: string): string => peerKinds.has(probe) && groupBy !== BY_NODE ? labelOf(peerNode(target)) : target
    result = buildMatrix(sources.nodes, { probe, windowMs, now, rowOf: name => only(src, labelOf(name)), colOf: name => only(dst, colOf(name)), keep, failingOnly: failing, ...limit })
  }
  return {
    probe,
    groupBy,
    window: formatDuration(windowMs),
    from: new Date(result.from).toISOString(),
    to: new Date(result.to).toISOString(),
    generatedAt: new Date(now).toISOString(),
    phasesIncluded: result.phasesIncluded,
    rows: result.rows,
    cols: result.cols,
    cells: result.cells
  }
}
