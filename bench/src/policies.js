// Big policies (issue 29, item 4): fastify-mtls-authz with 1,000 routes and 10,000 ACL entries (exact SPIFFE IDs, path
// patterns with `*` and `**`, whole partner trust domains), in one process: registration and `ready()` time (beside the
// same app without the plugin), the heap the compiled policy holds, the decision's time per request p50/p99, and a
// policy file's reload. `node src/policies.js [--smoke | --quick] [--out DIR] [--name NAME]`, or
// `pnpm bench --scenarios policies`.
//
// The decision is measured in place, per request: `app.inject()` requests through Fastify's own hook chain, one
// `onRequest` hook added just before the plugin's guard reads the clock and one added just after it reads it again, so
// each allowed request gives one sample of the guard's work (finding the route's compiled rule, the roles of the
// identity, the decision, the audit record) plus one empty hook step, which the same app without the plugin measures
// alone (the "empty step" figures). `request.peerIdentity` is set by a stand-in for fastify-mtls-identity before the
// first clock read (real identities, from certificates mtls-pki issues), so that resolving the identity is not counted.
import { execFile } from 'node:child_process'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import fastifyMtlsAuthz, { compilePolicy } from 'fastify-mtls-authz'
import { machineOf, writeResults } from './report.js'
import { toPeerIdentity } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { createTestPki } from 'mtls-pki'
import { calibrate, median, resultsName, spread } from './rounds.js'

const { values: args } = parseArgs({ args: process.argv.slice(2).filter(arg => arg !== '--'), options: { smoke: { type: 'boolean' }, quick: { type: 'boolean' }, out: { type: 'string' }, name: { type: 'string' }, 'heap-of': { type: 'string' } } })
const mode = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full'
const outDir = args.out ?? fileURLToPath(new URL('../results', import.meta.url))
const outName = `${args.name ?? resultsName(mode, true)}.policies`
// The policy's size is the scenario's and the same in every mode; the modes differ in how many decisions and reloads.
const ROUTES = 1000
const SHAPE = { exact: 7000, oneSegment: 1000, anyDepth: 1000, trustDomains: 1000 }
const PLANS = {
  smoke: { rounds: 1, identities: 6, cached: 600, firstOfConnection: 200, reloads: 1, verifies: 20 },
  quick: { rounds: 1, identities: 12, cached: 5000, firstOfConnection: 1000, reloads: 2, verifies: 200 },
  full: { rounds: 3, identities: 24, cached: 30_000, firstOfConnection: 5000, reloads: 5, verifies: 500 }
}
const plan = PLANS[mode]
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
// Collected twice around a turn of the event loop, so that finalizers and weak references of what went before are gone too.
const heapUsed = async () => { gc(); await new Promise(resolve => setImmediate(resolve)); gc(); return process.memoryUsage().heapUsed }
const startedAt = { time: Date.now(), loadAverage: loadavg() }

// The policy: one identity pattern and one role per ACL entry, every route's role granted by ten entries.
const roleOf = index => `route-${index % ROUTES}:call`
const acl = []
for (let i = 0; i < SHAPE.exact; i++) acl.push({ identities: [`spiffe://mycompany.com/ns-${i % 50}/service-${i}`], roles: [roleOf(i)] })
for (let i = 0; i < SHAPE.oneSegment; i++) acl.push({ identities: [`spiffe://mycompany.com/env-${i}/*/api`], roles: [roleOf(i + 1)] })
for (let i = 0; i < SHAPE.anyDepth; i++) acl.push({ identities: [`spiffe://mycompany.com/team-${i}/**`], roles: [roleOf(i + 2)] })
for (let i = 0; i < SHAPE.trustDomains; i++) acl.push({ identities: [`spiffe://partner-${i}.example/**`], roles: [roleOf(i + 3)] })
const deny = Array.from({ length: 100 }, (_, i) => `spiffe://mycompany.com/ns-${i % 50}/retired-${i}`)
const policy = { acl, deny, defaultPolicy: 'deny' }
// Each identity that requests, with the route one of its entries grants: the four kinds of entry in turn.
const KINDS = [
  i => ({ id: `spiffe://mycompany.com/ns-${(i * 37) % 50}/service-${(i * 37) % SHAPE.exact}`, route: (i * 37) % SHAPE.exact }),
  i => ({ id: `spiffe://mycompany.com/env-${i * 41}/blue/api`, route: i * 41 + 1 }),
  i => ({ id: `spiffe://mycompany.com/team-${i * 43}/jobs/nightly`, route: i * 43 + 2 }),
  i => ({ id: `spiffe://partner-${i * 47}.example/billing/sync`, route: i * 47 + 3 })
]

const KIND_NAMES = ['exact SPIFFE ID', '`*` path pattern', '`**` path pattern', 'whole trust domain']

const callers = []

// Stands in for fastify-mtls-identity (the plugin's declared dependency): request.peerIdentity is the identity the
// request's header names, of its connection (one object per caller, its roles cached by the plugin), or, for the
// first request of a connection, a new object made from the certificate.
const identityStandIn = fp(async app => {
  app.decorateRequest('peerIdentity', null)
  app.decorateRequest('peerCertificateError', null)
  app.addHook('onRequest', (request, _reply, done) => {
    const caller = callers[Number(request.headers['x-caller'])]
    request.peerIdentity = request.headers['x-first'] === '1' ? toPeerIdentity(caller.der) : caller.identity
    done()
  })
}, { name: 'fastify-mtls-identity' })

// The app: 1,000 routes, each needing its role; with or without the plugin; the clock hooks around the guard.
async function buildApp ({ authz, options = { policy }, clock = null }) {
  const app = Fastify()
  await app.register(identityStandIn)
  if (clock !== null) app.addHook('onRequest', (_request, _reply, done) => { clock.start = performance.now(); done() })
  if (authz) await app.register(fastifyMtlsAuthz, options)
  if (clock !== null) {
    app.addHook('onRequest', (_request, _reply, done) => {
      const end = performance.now()
      clock.starts[clock.count] = clock.start
      clock.samples[clock.count++] = (end - clock.start) * 1000
      done()
    })
  }
  for (let i = 0; i < ROUTES; i++) app.get(`/api/r${i}/:id`, { config: { mtls: { roles: [roleOf(i)] } } }, async () => 'ok')
  return app
}

// The heap an app holds after ready() (`--heap-of`), in a process of its own.
async function appHeap (which) {
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), '--heap-of', which])
  return JSON.parse(stdout).heapBytes
}

async function timedBuild (authz, options) {
  const started = performance.now()
  const app = await buildApp({ authz, options })
  const registered = performance.now()
  await app.ready()
  const ready = performance.now()
  return { app, registrationMs: registered - started, readyMs: ready - registered }
}

// Garbage collections, as the performance timeline sees them: a decision that a collection interrupted is told apart.
const collections = []
new PerformanceObserver(list => { for (const entry of list.getEntries()) collections.push([entry.startTime, entry.startTime + entry.duration]) }).observe({ entryTypes: ['gc'] })
const percentilesOf = values => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = q => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] }
}

// Decisions: `count` allowed requests, the callers in turn; every sample kept, percentiles of them, and of those no
// garbage collection overlapped (`withoutGc`; `gcShare`: the share of samples one did).
async function decisions (app, clock, count, first) {
  clock.samples = new Float64Array(count)
  clock.starts = new Float64Array(count)
  clock.count = 0
  collections.length = 0
  for (let i = 0; i < count; i++) {
    const caller = i % callers.length
    const response = await app.inject({ method: 'GET', url: callers[caller].path, headers: { 'x-caller': String(caller), 'x-first': first ? '1' : '0' } })
    if (response.statusCode !== 200) throw new Error(`policies: ${callers[caller].id} was refused ${callers[caller].path} (${response.statusCode} ${response.body})`)
  }
  // The observer hears of collections in a batch delivered on a later timer, not on the next turn of the loop.
  await new Promise(resolve => setTimeout(resolve, 50))
  const clean = []
  for (let i = 0; i < clock.count; i++) {
    const start = clock.starts[i]
    const end = start + clock.samples[i] / 1000
    if (!collections.some(([from, to]) => from < end && to > start)) clean.push(clock.samples[i])
  }
  // By the kind of ACL entry that grants the caller its role (callers take the kinds in turn).
  const byKind = KIND_NAMES.map((_, kind) => percentilesOf(clock.samples.subarray(0, clock.count).filter((_, i) => (i % callers.length) % KINDS.length === kind)))
  return { ...percentilesOf(clock.samples.subarray(0, clock.count)), withoutGc: percentilesOf(clean), gcShare: 1 - clean.length / clock.count, byKind }
}

// `--heap-of empty|big`: the heap an app with the 1,000 routes holds after ready(), with an empty policy or the big
// one, measured in a fresh process (in a process that built apps before, a collection may free an earlier one's
// garbage in the middle of the measurement); printed as JSON for the parent.
if (args['heap-of'] !== undefined) {
  const start = await heapUsed()
  const app = await buildApp({ authz: true, options: { policy: args['heap-of'] === 'big' ? policy : {} } })
  await app.ready()
  console.log(JSON.stringify({ heapBytes: await heapUsed() - start }))
  await app.close()
  process.exit(0)
}

const pki = await createTestPki()
for (let i = 0; i < plan.identities; i++) {
  const { id, route } = KINDS[i % KINDS.length](Math.floor(i / KINDS.length))
  const issued = await pki.intermediate.issue({ usage: 'client', spiffeId: id })
  callers.push({ id, der: readPemBlocks(issued.certificate)[0].der, path: `/api/r${route % ROUTES}/42` })
}
for (const caller of callers) caller.identity = toPeerIdentity(caller.der)

const rounds = []
// One app built and closed before the rounds: the first Fastify, the first compile and the modules' first use are not
// the figures.
await (await buildApp({ authz: true })).close()
for (let round = 0; round < plan.rounds; round++) {
  process.stderr.write(`\rpolicies: round ${round + 1}/${plan.rounds}`)
  const result = { calibration: calibrate(plan.verifies) }
  result.appHeapBytes = { emptyPolicy: await appHeap('empty'), bigPolicy: await appHeap('big') }
  // Registration and ready(): without the plugin, then with the big policy (alternating which goes first).
  const builds = {}
  for (const authz of round % 2 === 0 ? [false, true] : [true, false]) {
    const built = await timedBuild(authz)
    builds[authz ? 'authz' : 'baseline'] = built
  }
  result.registrationMs = { baseline: builds.baseline.registrationMs, authz: builds.authz.registrationMs }
  result.readyMs = { baseline: builds.baseline.readyMs, authz: builds.authz.readyMs }
  await Promise.all(Object.values(builds).map(built => built.app.close()))
  // The policy compiled alone: what registration and every reload pay.
  const compileStarted = performance.now()
  compilePolicy(policy)
  result.compileMs = performance.now() - compileStarted
  // Decisions in place, and the empty hook step alone (no plugin between the clock hooks).
  for (const [name, authz] of [['decision', true], ['emptyStep', false]]) {
    const clock = { start: 0n, samples: null, count: 0 }
    const app = await buildApp({ authz, clock })
    await app.ready()
    await decisions(app, clock, Math.min(2000, plan.cached), false) // warm-up: the JIT, every caller's roles
    result[name] = { cached: await decisions(app, clock, plan.cached, false), firstOfConnection: await decisions(app, clock, plan.firstOfConnection, true) }
    await app.close()
  }
  result.reload = await reloads()
  rounds.push(result)
}
process.stderr.write('\n')

// A policy file of the same size, replaced whole (renamed over, as deployments do) `plan.reloads` times: from the
// rename to the new policy in force (the watcher's 100 ms debounce included), and the longest the event loop was
// held meanwhile (reading, JSON.parse and compiling run in one go).
async function reloads () {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-bench-policies-'))
  try {
    const file = join(dir, 'policy.json')
    const text = version => JSON.stringify({ ...policy, acl: [...acl, { identities: [`spiffe://mycompany.com/reload/v${version}`], roles: [roleOf(0)] }] })
    await writeFile(file, text(0))
    const app = await buildApp({ authz: true, options: { policyFile: file } })
    await app.ready()
    const results = []
    try {
      for (let version = 1; version <= plan.reloads; version++) {
        const staged = join(dir, `staged-${version}`)
        const next = text(version)
        await writeFile(staged, next)
        const previous = app.mtlsAuthz.policy
        const started = performance.now()
        await rename(staged, file)
        let longestTurnMs = 0
        let last = performance.now()
        // Polled on every turn of the event loop: the longest gap between two turns is the longest block.
        while (app.mtlsAuthz.policy === previous) {
          await new Promise(resolve => setImmediate(resolve))
          const now = performance.now()
          longestTurnMs = Math.max(longestTurnMs, now - last)
          last = now
          if (now - started > 60_000) throw new Error('policies: the policy file was not reloaded within a minute')
        }
        const parseStarted = performance.now()
        compilePolicy(JSON.parse(next))
        results.push({ reloadMs: performance.now() - started, longestTurnMs, parseAndCompileMs: performance.now() - parseStarted, bytes: Buffer.byteLength(next) })
      }
    } finally {
      await app.close()
    }
    return { reloadMs: median(results.map(r => r.reloadMs)), longestTurnMs: median(results.map(r => r.longestTurnMs)), parseAndCompileMs: median(results.map(r => r.parseAndCompileMs)), bytes: results[0].bytes, reloads: results.length }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const round2 = value => Math.round(value * 100) / 100
const round3 = value => Math.round(value * 1000) / 1000
const round4 = value => Math.round(value * 10000) / 10000
const over = (pick, by = round2) => { const s = spread(rounds.map(pick)); return { rounds: rounds.map(pick).map(by), min: by(s.min), median: by(s.median), max: by(s.max) } }
const percentiles = path => Object.fromEntries(['p50', 'p90', 'p99', 'max'].map(q => [q, over(r => path(r)[q], round3)]))
const results = {
  machine: machineOf({ startedAt, mode, plan, calibration: { measure: 'CPU µs per P-256 ECDSA (SHA-256) verification, node:crypto, in this process', ...over(r => r.calibration) } }),
  policy: { routes: ROUTES, aclEntries: acl.length, shape: SHAPE, deny: deny.length, callers: callers.length, jsonBytes: Buffer.byteLength(JSON.stringify(policy)) },
  registrationMs: { baseline: over(r => r.registrationMs.baseline), authz: over(r => r.registrationMs.authz) },
  readyMs: { baseline: over(r => r.readyMs.baseline), authz: over(r => r.readyMs.authz) },
  compileMs: over(r => r.compileMs),
  // The heap the policy holds: the app's with it over the app's with an empty policy, both after ready().
  policyHeapBytes: over(r => r.appHeapBytes.bigPolicy - r.appHeapBytes.emptyPolicy, Math.round),
  appHeapBytes: { emptyPolicy: over(r => r.appHeapBytes.emptyPolicy, Math.round), bigPolicy: over(r => r.appHeapBytes.bigPolicy, Math.round) },
  // µs per decision in place (the guard and one empty hook step), and the empty step alone.
  decisionUs: { cached: percentiles(r => r.decision.cached), firstOfConnection: percentiles(r => r.decision.firstOfConnection) },
  // The same, of the decisions no garbage collection overlapped, and the share that one did.
  decisionWithoutGcUs: { cached: percentiles(r => r.decision.cached.withoutGc), firstOfConnection: percentiles(r => r.decision.firstOfConnection.withoutGc) },
  decisionByKindUs: Object.fromEntries(KIND_NAMES.map((name, kind) => [name, { cached: percentiles(r => r.decision.cached.byKind[kind]), firstOfConnection: percentiles(r => r.decision.firstOfConnection.byKind[kind]) }])),
  gcShare: { cached: over(r => r.decision.cached.gcShare, round4), firstOfConnection: over(r => r.decision.firstOfConnection.gcShare, round4) },
  emptyStepUs: { cached: percentiles(r => r.emptyStep.cached), firstOfConnection: percentiles(r => r.emptyStep.firstOfConnection) },
  decisions: { cached: rounds[0].decision.cached.count, firstOfConnection: rounds[0].decision.firstOfConnection.count },
  reload: { reloadMs: over(r => r.reload.reloadMs), longestTurnMs: over(r => r.reload.longestTurnMs), parseAndCompileMs: over(r => r.reload.parseAndCompileMs), bytes: rounds[0].reload.bytes, reloadsPerRound: plan.reloads }
}

const withSpread = (summary, format) => plan.rounds > 1 ? `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})` : format(summary.median)
const ms = value => value.toFixed(1)
const µs = value => value.toFixed(2)
const percent = value => `${(value * 100).toFixed(2)}%`
const mib = value => (value / 1024 / 1024).toFixed(1)
const rangeNote = plan.rounds > 1 ? `median (min–max) of ${plan.rounds} rounds` : 'one round: no spread'
const markdown = [
  `Measured ${results.machine.date.slice(0, 10)} on ${results.machine.cpu} (${results.machine.cores} cores), Node ${results.machine.node}; ${mode} run, ${rangeNote}. fastify-mtls-authz with ${ROUTES.toLocaleString('en-US')} routes and ${acl.length.toLocaleString('en-US')} ACL entries (${SHAPE.exact.toLocaleString('en-US')} exact SPIFFE IDs, ${SHAPE.oneSegment.toLocaleString('en-US')} \`*\` and ${SHAPE.anyDepth.toLocaleString('en-US')} \`**\` path patterns, ${SHAPE.trustDomains.toLocaleString('en-US')} whole trust domains; ${deny.length} deny patterns; ${mib(results.policy.jsonBytes)} MiB of JSON), ${callers.length} callers.`,
  '',
  `Calibration: a P-256 ECDSA verification took ${withSpread(results.machine.calibration, value => value.toFixed(1))} µs of CPU. Load average (1 min) ${results.machine.loadAverage.start[0]} at the start, ${results.machine.loadAverage.end[0]} at the end; the run took ${results.machine.durationS} s.`,
  '',
  '| what | figure |',
  '| --- | ---: |',
  `| registration (Fastify, plugins, 1,000 routes), ms: without the plugin / with it | ${withSpread(results.registrationMs.baseline, ms)} / ${withSpread(results.registrationMs.authz, ms)} |`,
  `| \`ready()\`, ms: without the plugin / with it | ${withSpread(results.readyMs.baseline, ms)} / ${withSpread(results.readyMs.authz, ms)} |`,
  `| compiling the policy alone, ms | ${withSpread(results.compileMs, ms)} |`,
  `| heap of the app after \`ready()\`, MiB: empty policy / big policy; the policy's share | ${withSpread(results.appHeapBytes.emptyPolicy, mib)} / ${withSpread(results.appHeapBytes.bigPolicy, mib)}; ${withSpread(results.policyHeapBytes, mib)} |`,
  `| decision in place, roles cached for the connection, µs p50 / p99 (${results.decisions.cached.toLocaleString('en-US')} a round) | ${withSpread(results.decisionUs.cached.p50, µs)} / ${withSpread(results.decisionUs.cached.p99, µs)} |`,
  `| decision in place, first request of a connection, µs p50 / p99 (${results.decisions.firstOfConnection.toLocaleString('en-US')} a round) | ${withSpread(results.decisionUs.firstOfConnection.p50, µs)} / ${withSpread(results.decisionUs.firstOfConnection.p99, µs)} |`,
  `| the same, leaving out the decisions a garbage collection overlapped (cached: ${withSpread(results.gcShare.cached, percent)} of them; first: ${withSpread(results.gcShare.firstOfConnection, percent)}), µs p50 / p99: cached / first request | ${withSpread(results.decisionWithoutGcUs.cached.p50, µs)} / ${withSpread(results.decisionWithoutGcUs.cached.p99, µs)}; ${withSpread(results.decisionWithoutGcUs.firstOfConnection.p50, µs)} / ${withSpread(results.decisionWithoutGcUs.firstOfConnection.p99, µs)} |`,
  `| the empty hook step alone (no plugin), µs p50 / p99 | ${withSpread(results.emptyStepUs.cached.p50, µs)} / ${withSpread(results.emptyStepUs.cached.p99, µs)} |`,
  `| policy file reload, rename to policy in force (100 ms debounce included), ms | ${withSpread(results.reload.reloadMs, ms)} |`,
  `| the longest the event loop was held during a reload, ms | ${withSpread(results.reload.longestTurnMs, ms)} |`,
  `| JSON.parse + compilePolicy of the file, ms | ${withSpread(results.reload.parseAndCompileMs, ms)} |`,
  ''
].join('\n')
await writeResults(outDir, outName, results, markdown)
