// DNS, Service and egress findings: dns-resolver, dns-path, dns-name, dns-group (dns.ts, with
// dns-signal.ts and dns-detections.ts),
// service-path (service-path.ts) and egress (egress.ts), read from the node store by
// dns-service-input.ts and judged with the thresholds of dns-service-limits.ts.

import { dnsFindings } from './dns.ts'
import type { DnsServiceInput } from './dns-service-input.ts'
import { failing, stillHappening, witnesses } from './dns-service-judge.ts'
import { egressFindings } from './egress.ts'
import type { Detection } from './finding.ts'
import type { FindingsContext } from './input.ts'
import { servicePathFindings } from './service-path.ts'

export type { DnsServiceInput } from './dns-service-input.ts'
export { readDnsServiceInput } from './dns-service-input.ts'

/**
 * The DNS, Service and egress detections for one evaluation: pure, on `input` indexed like
 * ctx.nodes. `explained`: nodes whose own network fault (node-outbound, node-isolated,
 * agent-degraded) already explains their failures; they and degraded agents (ctx.nodes[].degraded)
 * testify to nothing here. Only detections whose failing cells still fail in the window's recent
 * part (where `input` has it) are returned. Sorted by kind, then subject id. Throws nothing.
 */
export function dnsServiceFindings (ctx: FindingsContext, input: DnsServiceInput, explained: ReadonlySet<string>): Detection[] {
  const witness = witnesses(ctx, explained)
  // A node whose own pod probes mostly fail (loss toward it, a broken boundary) fails its DNS
  // probes for the same reason: the network findings name that, so it is no DNS witness.
  const dnsWitness = witness.map((w, n) => {
    const pod = input.podOut[n]
    return w && (pod === undefined || failing(pod.samples, pod.errors) !== true)
  })
  const out = [...dnsFindings(ctx, input, dnsWitness), ...servicePathFindings(ctx, input, witness), ...egressFindings(ctx, input, witness)]
    // A fault gone from the window's recent part would otherwise still be found, narrower each
    // evaluation, while the window drains (dns-service-judge.ts stillHappening).
    .filter(stillHappening)
  return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.subject.id.localeCompare(b.subject.id))
}
