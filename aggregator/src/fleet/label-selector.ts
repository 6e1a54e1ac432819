// Kubernetes label selectors (`migration-batch=7`, `cniplugin=cilium,zone in (a,b)`, `!spot`):
// parsing and matching, for gates scoped to nodes. No maintained npm package parses them (checked
// 2026-11: `kubernetes-label-selector` is a 2016 UI widget, `ts-selector` is not on the registry),
// so this follows the grammar and checks of k8s.io/apimachinery/pkg/labels/selector.go:
//
//   <selector-syntax>         ::= <requirement> | <requirement> "," <selector-syntax>
//   <requirement>             ::= [!] KEY [ <set-based-restriction> | <exact-match-restriction> ]
//   <set-based-restriction>   ::= "" | <inclusion-exclusion> <value-set>
//   <inclusion-exclusion>     ::= "in" | "notin"
//   <value-set>               ::= "(" <values> ")"
//   <values>                  ::= VALUE | VALUE "," <values>
//   <exact-match-restriction> ::= ["=" | "==" | "!=" | ">" | "<"] VALUE
//
// KEY is a qualified name ([DNS-1123 subdomain "/"] name), VALUE a label value (validation.go).

import type { Labels } from '@pingfleet/protocol'

export const SELECTOR_OPERATORS = ['=', '==', '!=', 'in', 'notin', 'exists', '!', '>', '<'] as const
export type SelectorOperator = typeof SELECTOR_OPERATORS[number]

export interface Requirement {
  key: string
  operator: SelectorOperator
  /** Sorted and unique; empty for `exists` and `!`. */
  values: readonly string[]
}

export interface LabelSelector {
  /** The selector as written. */
  text: string
  /** ANDed, in the order written. */
  requirements: readonly Requirement[]
  matches: (labels: Labels) => boolean
}

/** A selector that does not parse; the message says where and what was expected. */
export class SelectorError extends Error {
  constructor (text: string, position: number, expected: string) {
    super(`${JSON.stringify(text)} is not a Kubernetes label selector: at character ${position + 1}, ${expected}`)
    this.name = 'SelectorError'
  }
}

// Tokens as selector.go's lexer cuts them: special symbols, whitespace, and identifiers (any other run).
type TokenKind = 'id' | 'in' | 'notin' | '!' | '!=' | '=' | '==' | '>' | '<' | '(' | ')' | ',' | 'end'
interface Token { kind: TokenKind, text: string, at: number }

const SPECIAL = new Set(['!', '=', '>', '<', '(', ')', ','])
const TWO_CHAR = new Set(['!=', '=='])

function lex (text: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (/\s/.test(c)) { i++; continue }
    if (SPECIAL.has(c)) {
      const two = text.slice(i, i + 2)
      const symbol = TWO_CHAR.has(two) ? two : c
      out.push({ kind: symbol as TokenKind, text: symbol, at: i })
      i += symbol.length
      continue
    }
    const start = i
    while (i < text.length && !SPECIAL.has(text[i]!) && !/\s/.test(text[i]!)) i++
    const word = text.slice(start, i)
    out.push({ kind: word === 'in' || word === 'notin' ? word : 'id', text: word, at: start })
  }
  out.push({ kind: 'end', text: 'end of string', at: text.length })
  return out
}

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Why `key` is not a qualified label key (validation.go IsQualifiedName), or null. */
export function invalidKey (key: string): string | null {
  const slash = key.indexOf('/')
  const prefix = slash === -1 ? null : key.slice(0, slash)
  const name = slash === -1 ? key : key.slice(slash + 1)
  if (prefix !== null && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `the key prefix ${JSON.stringify(prefix)} must be a lower-case DNS subdomain of at most 253 characters`
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `the key name ${JSON.stringify(name)} must be 1 to 63 characters, alphanumeric at both ends, with only -, _ and . inside`
  }
  return null
}

/** Why `value` is not a label value (validation.go IsValidLabelValue), or null. */
export function invalidValue (value: string): string | null {
  if (value === '') return null
  if (value.length > 63 || !NAME.test(value)) return `the value ${JSON.stringify(value)} must be at most 63 characters, alphanumeric at both ends, with only -, _ and . inside`
  return null
}

function describe (token: Token): string {
  return token.kind === 'end' ? 'end of string' : JSON.stringify(token.text)
}

/**
 * Parses a Kubernetes label selector. An empty selector is refused (Kubernetes reads it as "every
 * object", which a gate scope never means). Throws SelectorError naming the position and what was
 * expected, with the messages of selector.go where it has one.
 */
export function parseSelector (text: string): LabelSelector {
  const tokens = lex(text)
  let p = 0
  const peek = (): Token => tokens[p]!
  const next = (): Token => tokens[p++]!
  const fail = (token: Token, expected: string): never => { throw new SelectorError(text, token.at, expected) }
  if (peek().kind === 'end') fail(peek(), 'expected at least one requirement (an empty selector would select every node)')

  const key = (): string => {
    const token = next()
    if (token.kind !== 'id') fail(token, `found ${describe(token)}, expected a label key`)
    const why = invalidKey(token.text)
    if (why !== null) fail(token, why)
    return token.text
  }
  const value = (token: Token): string => {
    const why = invalidValue(token.text)
    if (why !== null) fail(token, why)
    return token.text
  }

  const requirements: Requirement[] = []
  for (;;) {
    let requirement: Requirement
    if (peek().kind === '!') {
      next()
      requirement = { key: key(), operator: '!', values: [] }
    } else {
      const k = key()
      const op = peek()
      if (op.kind === ',' || op.kind === 'end') {
        requirement = { key: k, operator: 'exists', values: [] }
      } else if (op.kind === '=' || op.kind === '==' || op.kind === '!=' || op.kind === '>' || op.kind === '<') {
        next()
        const v = peek()
        // `key=` (nothing after) selects the empty value, as in Kubernetes.
        let text = ''
        if (v.kind === 'id' || v.kind === 'in' || v.kind === 'notin') text = value(next())
        else if (v.kind !== ',' && v.kind !== 'end') fail(v, `found ${describe(v)}, expected a value after ${op.text}`)
        if ((op.kind === '>' || op.kind === '<') && !/^-?\d+$/.test(text)) fail(v, `${op.text} needs an integer value, not ${JSON.stringify(text)}`)
        requirement = { key: k, operator: op.kind, values: [text] }
      } else if (op.kind === 'in' || op.kind === 'notin') {
        next()
        const open = next()
        if (open.kind !== '(') fail(open, `found ${describe(open)}, expected "(" after ${op.text}`)
        const values = new Set<string>()
        // selector.go parseIdentifiersList: empty entries ("(a,,b)", "()") stand for the empty value.
        let expectValue = true
        for (;;) {
          const t = next()
          if (t.kind === ')') { if (expectValue) values.add(''); break }
          if (t.kind === ',') { if (expectValue) values.add(''); expectValue = true; continue }
          if ((t.kind === 'id' || t.kind === 'in' || t.kind === 'notin') && expectValue) { values.add(value(t)); expectValue = false; continue }
          fail(t, `found ${describe(t)}, expected ${expectValue ? 'a value, "," or ")"' : '"," or ")"'}`)
        }
        requirement = { key: k, operator: op.kind, values: [...values].sort() }
      } else {
        fail(op, `found ${describe(op)}, expected one of =, ==, !=, in, notin, >, <, "," or end of string`)
      }
    }
    requirements.push(requirement!)
    const after = next()
    if (after.kind === 'end') break
    if (after.kind !== ',') fail(after, `found ${describe(after)}, expected "," or end of string`)
    if (peek().kind === 'end' || peek().kind === ',') fail(peek(), `found ${describe(peek())}, expected a requirement after ","`)
  }
  const frozen = Object.freeze(requirements.map(r => Object.freeze({ ...r, values: Object.freeze(r.values) })))
  return Object.freeze({ text, requirements: frozen, matches: (labels: Labels) => frozen.every(r => matchesRequirement(r, labels)) })
}

/** Requirement.Matches of selector.go: `!=` and `notin` also match nodes without the key. */
function matchesRequirement (r: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, r.key)
  const v = labels[r.key]
  switch (r.operator) {
    case '=': case '==': case 'in': return has && r.values.includes(v!)
    case '!=': case 'notin': return !has || !r.values.includes(v!)
    case 'exists': return has
    case '!': return !has
    case '>': case '<': {
      if (!has || !/^-?\d+$/.test(v!)) return false
      const [a, b] = [Number(v), Number(r.values[0])]
      return r.operator === '>' ? a > b : a < b
    }
  }
}
