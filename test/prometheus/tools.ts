// Shared by the Prometheus suites: where promtool and prometheus are, and the skip-or-fail rule
// for a missing binary (skip locally with the reason, fail under CI=true).

import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'

export const ROOT = resolve(import.meta.dirname, '../..')
export const RULES_FILE = join(ROOT, 'charts/pingfleet/files/rules.yaml')
export const DASHBOARDS_DIR = join(ROOT, 'charts/pingfleet/files/dashboards')
export const RULES_TESTS_DIR = join(ROOT, 'test/prometheus/rules-tests')
export const IN_CI = process.env.CI === 'true'

/** Finds a command on PATH, or returns null. */
export function onPath (command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, command))) return join(dir, command)
  }
  return null
}

/**
 * Options for a t.test that needs a binary: skipped with the reason when it is missing, except
 * under CI=true, where the test runs and fails on purpose so a broken CI image cannot pass green.
 */
export function needs (command: string): { skip: string | false } {
  if (onPath(command) !== null || IN_CI) return { skip: false }
  return { skip: `${command} is not on PATH (Debian: apt-get install prometheus); CI=true makes this a failure` }
}

export function requireBinary (command: string): string {
  const path = onPath(command)
  if (path === null) throw new Error(`${command} is not on PATH, and CI=true requires it (Debian: apt-get install prometheus)`)
  return path
}

export interface Rule {
  record?: string
  alert?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

export interface RulesFile { groups: Array<{ name: string, interval?: string, rules: Rule[] }> }

export function readRules (): RulesFile {
  return parse(readFileSync(RULES_FILE, 'utf8')) as RulesFile
}
