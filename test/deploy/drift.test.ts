// The start commands live in several places: the Dockerfile, the chart, docker-compose.yml and the
// docs. This suite keeps them in step with each other and with the workspaces they start.

import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, START, missingTools, needs, parseManifests, readCompose, template, type Loose } from './tools.ts'

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')
const rootPackage = JSON.parse(read('package.json'))

/** The final stage of the Dockerfile, and the JSON (exec form) arguments of one instruction in it. */
function dockerfile (): { finalStage: string, instruction: (name: string) => unknown } {
  const text = read('Dockerfile').replace(/\\\n/g, ' ')
  const stages = text.split(/^FROM /m)
  const finalStage = stages[stages.length - 1]!
  return {
    finalStage,
    instruction (name: string): unknown {
      const lines = finalStage.split('\n').filter(line => line.startsWith(`${name} `))
      if (lines.length !== 1) return undefined
      return JSON.parse(lines[0]!.slice(name.length + 1))
    }
  }
}

t.test('the entry files exist in the workspaces package.json lists', async t => {
  t.same([...rootPackage.workspaces].sort(), ['agent', 'aggregator', 'protocol'])
  for (const [component, command] of Object.entries(START)) {
    const entry = command[1]
    t.ok(existsSync(join(ROOT, entry)), `${component}: ${entry} exists`)
    t.ok(existsSync(join(ROOT, component, 'package.json')), `${component} is a workspace`)
  }
})

t.test('each workspace\'s exports exist, and it declares every package its sources import', async t => {
  for (const workspace of rootPackage.workspaces as string[]) {
    const manifest = JSON.parse(read(`${workspace}/package.json`))
    for (const target of Object.values<string>(manifest.exports ?? {})) t.ok(existsSync(join(ROOT, workspace, target)), `${workspace}: exports ${target} exists`)
    const imported = new Set<string>()
    for (const file of readdirSync(join(ROOT, workspace, 'src'), { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.ts'))) {
      for (const [, spec] of read(`${workspace}/src/${file}`).matchAll(/(?:from|import\() '([^'.][^']*)'/g)) {
        if (!spec!.startsWith('node:')) imported.add(spec!.split('/').slice(0, spec!.startsWith('@') ? 2 : 1).join('/'))
      }
    }
    t.same([...imported].filter(name => manifest.dependencies?.[name] === undefined), [], `${workspace}: every imported package is a dependency`)
  }
})

t.test('the Dockerfile: Node 24 as the engines field says, exec-form start, tini as PID 1', async t => {
  const docker = dockerfile()
  const engines = /^>=(\d+)/.exec(rootPackage.engines.node)?.[1]
  const base = /^ARG NODE_IMAGE=node:(\d+)[-.\w]*$/m.exec(read('Dockerfile'))?.[1]
  t.equal(base, engines, `the base image is Node ${engines}`)
  t.same(docker.instruction('ENTRYPOINT'), ['/usr/bin/tini', '--'])
  t.same(docker.instruction('CMD'), START.aggregator, 'the default command starts the aggregator')
  t.match(docker.finalStage, /^USER \d+:\d+$/m, 'a numeric user, so runAsNonRoot can check it')
  for (const workspace of rootPackage.workspaces) {
    t.match(docker.finalStage, new RegExp(`^COPY ${workspace}/ ${workspace}/$`, 'm'), `the image has ${workspace}/`)
  }
  t.match(read('Dockerfile'), /npm ci --omit=dev/, 'production dependencies only')
})

t.test('.dockerignore lets the sources in and keeps tests and modules out', async t => {
  const lines = read('.dockerignore').split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  t.equal(lines[0], '*', 'an allow-list')
  for (const path of ['package.json', 'package-lock.json', ...rootPackage.workspaces.map((w: string) => `${w}/`)]) {
    t.ok(lines.includes(`!${path}`), `${path} is let in`)
  }
  t.ok(lines.includes('**/node_modules'))
  t.ok(lines.includes('**/test'))
})

t.test('the chart runs the same commands, keeping the image\'s entrypoint', needs(missingTools()), async t => {
  const manifests = parseManifests(template('default-values.yaml').stdout)
  const containers = Object.fromEntries(manifests
    .filter(m => m.kind === 'DaemonSet' || m.kind === 'Deployment')
    .flatMap(m => m.spec.template.spec.containers)
    .map((c: Loose) => [c.name, c]))
  for (const [component, command] of Object.entries(START)) {
    t.same(containers[component]?.args, command, `${component} args`)
    t.equal(containers[component]?.command, undefined, `${component} keeps tini as the entrypoint`)
  }
})

t.test('docker-compose runs the same commands', async t => {
  const services: Record<string, { command?: string[] }> = readCompose().services
  const commands = new Set(Object.values(services).filter(s => s.command !== undefined && s.command[0] === 'node')
    .map(s => JSON.stringify(s.command)))
  t.same([...commands].sort(), Object.values(START).map(c => JSON.stringify(c)).sort())
})

/** Every `node <path>.ts` command a document mentions. */
function commandsIn (text: string): string[] {
  return [...new Set([...text.matchAll(/\bnode ([\w./-]+\.ts)\b/g)].map(m => `node ${m[1]}`))]
}

t.test('docs/install.md names the start commands', async t => {
  const mentioned = commandsIn(read('docs/install.md'))
  t.same(mentioned.sort(), Object.values(START).map(c => c.join(' ')).sort())
})

t.test('the README names the same start commands', async t => {
  const expected = Object.values(START).map(c => c.join(' '))
  const mentioned = commandsIn(read('README.md')).filter(c => c.endsWith('/main.ts'))
  for (const command of mentioned) t.ok(expected.includes(command), `README: ${command} is a start command of the image`)
  t.ok(expected.length > 0, `${expected.length} start commands`)
  for (const command of expected) t.ok(mentioned.includes(command), `README names ${command}`)
})
