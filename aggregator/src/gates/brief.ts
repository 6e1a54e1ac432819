// The brief form of a gate result (`view=brief`): the verdict and the ids of the checks that did not
// pass, a few hundred bytes, with the full evidence one GET away.

import type { GateResult } from './eval.ts'

/** Check ids a brief answer lists per verdict; the rest are counted. */
export const BRIEF_IDS = 3

export interface BriefResult {
  name: string
  verdict: GateResult['verdict']
  evaluatedAt: string
  summary: GateResult['summary']
  failing: string[]
  insufficient: string[]
  more: number
  evidence: string
}

/** `evidence` is the path (with the scope's query) that answers the full result. */
export function brief (result: GateResult, evidence: string): BriefResult {
  const ids = (verdict: string): string[] => result.checks.filter(c => c.verdict === verdict).map(c => c.id)
  const failing = ids('fail')
  const insufficient = ids('insufficient_data')
  return {
    name: result.name,
    verdict: result.verdict,
    evaluatedAt: result.evaluatedAt,
    summary: result.summary,
    failing: failing.slice(0, BRIEF_IDS),
    insufficient: insufficient.slice(0, BRIEF_IDS),
    more: Math.max(0, failing.length - BRIEF_IDS) + Math.max(0, insufficient.length - BRIEF_IDS),
    evidence
  }
}
