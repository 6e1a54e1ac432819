// A kubectl stand-in for the few commands docs/examples/migrate-nodes.sh runs, talking to the fake
// Kubernetes API (aggregator/test/kube-fake.ts) with the same requests kubectl sends: list nodes by
// label selector, merge-PATCH a node (cordon, uncordon, label), list pods by node and DELETE them.
// Anything else exits 1 naming what it does not do, so a changed script fails loudly.
//
//   KUBECTL_STANDIN_SERVER=http://127.0.0.1:PORT KUBECTL_STANDIN_TOKEN=… node kubectl-standin.ts get nodes -l 'a!=b' -o name

const server = process.env.KUBECTL_STANDIN_SERVER ?? ''
const token = process.env.KUBECTL_STANDIN_TOKEN ?? ''

interface Obj { metadata: { name: string, namespace?: string, labels?: Record<string, string>, ownerReferences?: Array<{ kind: string }> } }

class Unsupported extends Error {}

async function api (method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(server + path, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/merge-patch+json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`Error from server (${response.status}): ${(JSON.parse(text) as { message?: string }).message ?? text}`)
  return JSON.parse(text)
}

/** `node/x` or `x` to `x`. */
function nodeName (arg: string | undefined): string {
  if (arg === undefined) throw new Unsupported('a node name is required')
  if (arg.includes('/') && !arg.startsWith('node/') && !arg.startsWith('nodes/')) throw new Unsupported(`only nodes: ${arg}`)
  return arg.slice(arg.indexOf('/') + 1)
}

/** Splits `--flag=value`, `--flag value` and `-l value` from positional arguments. */
function parse (args: string[], withValue: readonly string[]): { positional: string[], flags: Map<string, string> } {
  const positional: string[] = []
  const flags = new Map<string, string>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith('-')) { positional.push(arg); continue }
    const eq = arg.indexOf('=')
    if (eq !== -1) flags.set(arg.slice(0, eq), arg.slice(eq + 1))
    else if (withValue.includes(arg)) flags.set(arg, args[++i] ?? '')
    else flags.set(arg, 'true')
  }
  return { positional, flags }
}

function only (flags: Map<string, string>, allowed: readonly string[]): void {
  for (const flag of flags.keys()) if (!allowed.includes(flag)) throw new Unsupported(`flag ${flag}`)
}

async function cordon (name: string, unschedulable: boolean): Promise<void> {
  const current = ((await api('GET', `/api/v1/nodes/${encodeURIComponent(name)}`)) as { spec?: { unschedulable?: boolean } }).spec?.unschedulable === true
  const word = unschedulable ? 'cordoned' : 'uncordoned'
  if (current === unschedulable) {
    process.stdout.write(`node/${name} already ${word}\n`)
    return
  }
  // kubectl sends null to clear the field on uncordon.
  await api('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, { spec: { unschedulable: unschedulable ? true : null } })
  process.stdout.write(`node/${name} ${word}\n`)
}

async function podsOn (node: string): Promise<Obj[]> {
  return ((await api('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`)) as { items: Obj[] }).items
}

async function main (argv: string[]): Promise<void> {
  const [verb, ...rest] = argv
  switch (verb) {
    case 'get': {
      const { positional, flags } = parse(rest, ['-l', '--selector', '-o', '--output'])
      only(flags, ['-l', '--selector', '-o', '--output'])
      if (positional[0] !== 'nodes' || positional.length !== 1) throw new Unsupported(`get ${positional.join(' ')}`)
      if ((flags.get('-o') ?? flags.get('--output')) !== 'name') throw new Unsupported('get without -o name')
      const selector = flags.get('-l') ?? flags.get('--selector') ?? ''
      const list = (await api('GET', `/api/v1/nodes${selector === '' ? '' : `?labelSelector=${encodeURIComponent(selector)}`}`)) as { items: Obj[] }
      for (const item of list.items) process.stdout.write(`node/${item.metadata.name}\n`)
      return
    }
    case 'cordon':
    case 'uncordon': {
      const { positional, flags } = parse(rest, [])
      only(flags, [])
      await cordon(nodeName(positional[0]), verb === 'cordon')
      return
    }
    case 'drain': {
      const { positional, flags } = parse(rest, ['--timeout'])
      only(flags, ['--ignore-daemonsets', '--delete-emptydir-data', '--timeout'])
      const name = nodeName(positional[0])
      await cordon(name, true)
      const pods = await podsOn(name)
      const daemons = pods.filter(p => p.metadata.ownerReferences?.some(o => o.kind === 'DaemonSet') === true)
      const others = pods.filter(p => !daemons.includes(p))
      if (daemons.length > 0 && flags.get('--ignore-daemonsets') !== 'true') {
        throw new Error(`cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ${daemons.map(p => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')}`)
      }
      // The fake cluster runs only the agents' DaemonSet; evicting other pods is not stood in for.
      if (others.length > 0) throw new Unsupported(`evicting ${others.map(p => p.metadata.name).join(', ')}`)
      if (daemons.length > 0) process.stderr.write(`Warning: ignoring DaemonSet-managed Pods: ${daemons.map(p => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')}\n`)
      process.stdout.write(`node/${name} drained\n`)
      return
    }
    case 'label': {
      const { positional, flags } = parse(rest, [])
      only(flags, ['--overwrite'])
      const name = nodeName(positional[0])
      const labels: Record<string, string | null> = {}
      for (const pair of positional.slice(1)) {
        if (pair.endsWith('-') && !pair.includes('=')) labels[pair.slice(0, -1)] = null
        else if (pair.includes('=')) labels[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1)
        else throw new Unsupported(`label argument ${pair}`)
      }
      if (flags.get('--overwrite') !== 'true') {
        const current = ((await api('GET', `/api/v1/nodes/${encodeURIComponent(name)}`)) as Obj).metadata.labels ?? {}
        const clash = Object.keys(labels).find(k => labels[k] !== null && k in current && current[k] !== labels[k])
        if (clash !== undefined) throw new Error(`'${clash}' already has a value (${current[clash]}), and --overwrite is false`)
      }
      await api('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, { metadata: { labels } })
      process.stdout.write(`node/${name} labeled\n`)
      return
    }
    case 'delete': {
      const { positional, flags } = parse(rest, ['--field-selector'])
      only(flags, ['--all-namespaces', '-A', '--field-selector', '--wait'])
      if (positional.join(' ') !== 'pods' || (flags.get('--all-namespaces') ?? flags.get('-A')) !== 'true') throw new Unsupported(`delete ${positional.join(' ')} without --all-namespaces`)
      const m = /^spec\.nodeName=(.+)$/.exec(flags.get('--field-selector') ?? '')
      if (m === null) throw new Unsupported('delete pods without --field-selector spec.nodeName=<node>')
      if (flags.get('--wait') !== 'false') throw new Unsupported('delete that waits for the pods to go')
      for (const pod of await podsOn(m[1]!)) {
        await api('DELETE', `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/pods/${encodeURIComponent(pod.metadata.name)}`)
        process.stdout.write(`pod "${pod.metadata.name}" deleted from ${pod.metadata.namespace} namespace\n`)
      }
      return
    }
    default:
      throw new Unsupported(`command ${verb ?? '(none)'}`)
  }
}

try {
  if (server === '') throw new Unsupported('KUBECTL_STANDIN_SERVER is not set')
  await main(process.argv.slice(2))
} catch (err) {
  process.stderr.write(err instanceof Unsupported
    ? `kubectl stand-in: not supported: ${err.message} (argv: ${process.argv.slice(2).join(' ')})\n`
    : `error: ${(err as Error).message}\n`)
  process.exitCode = 1
}
