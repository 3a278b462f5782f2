import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { hangLimit } from 'mtls-test-support'

// The client and policies families (issue 29) in smoke mode: fixed counts of work, a few seconds each. Time limits only
// turn a hang into a failure (MTLS_TEST_TIME_FACTOR, as in bench.test.js); no assertion reads a clock.
t.setTimeout(hangLimit(300_000))
const run = promisify(execFile)
const runBench = args => run(process.execPath, [fileURLToPath(new URL('../src/run.js', import.meta.url)), ...args], { timeout: hangLimit(120_000) })
const METRICS = ['keepAlive', 'fullHandshake', 'resumedHandshake']

t.test('--scenarios client measures each client\'s own CPU per operation, paired with plain undici, and the resumed share', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await runBench(['--smoke', '--scenarios', 'client', '--out', out])
  t.same((await readdir(out)).sort(), ['smoke.client.json', 'smoke.client.md'], 'no server scenario ran, and nothing is latest.*')
  const results = JSON.parse(await readFile(join(out, 'smoke.client.json'), 'utf8'))
  t.same(results.clients.map(row => row.client), ['undici', 'undici:shared-context', 'undici-mtls', 'undici-mtls+server'])
  t.match(results.server, { scenario: 'mtls', node: process.versions.node })
  for (const row of results.clients) {
    for (const metric of METRICS) t.ok(row.clientCpuUs[metric] > 0, `${row.client}: client CPU per ${metric} measured (${row.clientCpuUs[metric]})`)
    t.equal(row.errors, 0, `${row.client}: every request answered`)
    // The smoke plan: 200 keep-alive requests, 12 new connections with sessions off, 12 with each client's default.
    t.same(row.operations, { keepAlive: [200], fullHandshake: [12], resumedHandshake: [12] }, `${row.client}: the work counted`)
    t.same(row.handshakes.keepAlive, { full: 0, resumed: 0 }, `${row.client}: keep-alive requests opened no connection`)
    t.same(row.handshakes.fullHandshake, { full: 12, resumed: 0 }, `${row.client}: with sessions off, every connection a full handshake`)
    t.equal(row.handshakes.resumedHandshake.full + row.handshakes.resumedHandshake.resumed, 12, `${row.client}: one connection per request`)
    t.ok(row.resumedShare >= 0 && row.resumedShare <= 1)
    if (row.client === 'undici') t.equal(row.vsUndici, null, 'plain undici is the baseline')
    else for (const metric of METRICS) t.match(row.vsUndici[metric], { rounds: [Number], median: Number }, `${row.client}: ${metric} over plain undici's, paired`)
  }
  // undici-mtls keeps the sessions of the servers it authorized: every repeat connection resumes.
  for (const client of ['undici-mtls', 'undici-mtls+server']) t.equal(results.clients.find(row => row.client === client).resumedShare, 1, `${client} resumed every repeat connection`)
  const mtls = results.clients.find(row => row.client === 'undici-mtls')
  const plain = results.clients.find(row => row.client === 'undici')
  t.ok(Math.abs(mtls.vsUndici.keepAlive.median - mtls.clientCpuUs.keepAlive / plain.clientCpuUs.keepAlive) < 0.01, 'the ratio is the round\'s pair')
  t.match(results.machine.calibration, { measure: /P-256 ECDSA/, median: Number })
  t.match(await readFile(join(out, 'smoke.client.md'), 'utf8'), /\| undici-mtls \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/)
})

t.test('--scenarios policies measures ready(), heap, decisions and a reload with 1,000 routes and 10,000 ACL entries', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await runBench(['--smoke', '--scenarios', 'policies', '--out', out])
  t.same((await readdir(out)).sort(), ['smoke.policies.json', 'smoke.policies.md'])
  const results = JSON.parse(await readFile(join(out, 'smoke.policies.json'), 'utf8'))
  t.match(results.policy, { routes: 1000, aclEntries: 10_000, deny: 100 })
  for (const [name, figure] of [['registration with the plugin', results.registrationMs.authz], ['ready() with the plugin', results.readyMs.authz], ['compile', results.compileMs], ['reload', results.reload.reloadMs], ['parse and compile', results.reload.parseAndCompileMs]]) {
    t.ok(figure.median > 0, `${name}: ${figure.median} ms`)
  }
  t.ok(results.policyHeapBytes.median > 0, `the policy holds ${results.policyHeapBytes.median} bytes of the app's heap`)
  t.ok(results.appHeapBytes.bigPolicy.median > results.appHeapBytes.emptyPolicy.median, 'the big policy costs the app heap')
  // Every decision of the window was measured (a refused request fails the run): 600 cached, 200 first of a connection.
  t.same(results.decisions, { cached: 600, firstOfConnection: 200 })
  for (const kind of ['cached', 'firstOfConnection']) {
    t.ok(results.decisionUs[kind].p50.median > 0 && results.decisionUs[kind].p99.median >= results.decisionUs[kind].p50.median, `${kind}: p50 ${results.decisionUs[kind].p50.median} µs, p99 ${results.decisionUs[kind].p99.median} µs`)
    t.ok(results.emptyStepUs[kind].p50.median > 0, `${kind}: the empty hook step measured`)
  }
  t.same(Object.keys(results.decisionByKindUs), ['exact SPIFFE ID', '`*` path pattern', '`**` path pattern', 'whole trust domain'])
  t.equal(results.reload.reloadsPerRound, 1)
  t.match(await readFile(join(out, 'smoke.policies.md'), 'utf8'), /decision in place, roles cached for the connection, µs p50 \/ p99 .* \| \d+\.\d\d \/ \d+\.\d\d \|/)
})

t.test('a family named beside server scenarios runs after them', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await runBench(['--smoke', '--scenarios', 'http,policies', '--out', out])
  t.same((await readdir(out)).sort(), ['smoke.json', 'smoke.md', 'smoke.policies.json', 'smoke.policies.md', 'smoke.svg'])
  t.same(JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8')).scenarios.map(row => row.scenario), ['http'])
})
