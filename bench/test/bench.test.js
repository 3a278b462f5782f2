import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createSecureContext } from 'node:tls'
import t from 'tap'
import { hangLimit } from 'mtls-test-support'

// Time limits here only turn a hang into a failure, never a speed target: written for a quiet two-core machine
// with room to spare and multiplied by MTLS_TEST_TIME_FACTOR (test-support's hangLimit). No assertion reads a clock:
// smoke windows count their work.
// The smoke run of every scenario takes 10 to 40 s as the machine gets busier; tap's own 30 s per file would be a speed target.
t.setTimeout(hangLimit(600_000))

const run = promisify(execFile)
// The post-quantum scenario runs only where this Node (the load generator and the server) has the hybrid groups.
const hybrid = (() => { try { createSecureContext({ ecdhCurve: 'X25519MLKEM768' }); return true } catch { return false } })()
// The OCSP family: mtls-pki's responder runs `openssl ocsp`; each `unseen` scenario measures first connections only.
const OCSP_SCENARIOS = ['mtls:ocsp-certs', 'mtls+ocsp-stapling', 'mtls+revocation:cached', 'mtls:ocsp-certs:unseen', 'mtls+revocation:uncached']
const UNSEEN = ['mtls:ocsp-certs:unseen', 'mtls+revocation:uncached']
const NODE_SCENARIOS = ['http', 'tls', 'node-mtls', 'node-mtls:x25519', ...(hybrid ? ['node-mtls:x25519mlkem768'] : []), 'fastify-tls-options', 'mtls', 'mtls+identity', 'mtls+identity+authz', 'mtls+identity+authz+logger', 'x509source:mtls+identity+authz', 'x509source-federated:mtls+identity+authz', ...OCSP_SCENARIOS]
const PROXY_SCENARIOS = ['nginx-mtls', 'nginx-mtls->http', 'nginx-mtls->fastify-identity', 'haproxy-mtls->fastify-identity']
const runBench = (args, options = {}) => run(process.execPath, [fileURLToPath(new URL('../src/run.js', import.meta.url)), ...args], { timeout: hangLimit(240_000), ...options })
const PACKAGES = ['mtls-core', 'mtls-pki', 'fastify-mtls', 'fastify-mtls-identity', 'fastify-mtls-authz', 'undici-mtls']
const METRICS = ['keepAlive', 'fullHandshake', 'resumedHandshake']

t.test('--help prints the usage and exits 0 (pnpm bench --help passes the flag on)', async t => {
  const { stdout, stderr } = await runBench(['--help'])
  t.match(stdout, /^usage: pnpm bench \[--quick \| --smoke\]/)
  t.match(stdout, 'results/latest.{json,md,svg}')
  t.match(stdout, 'haproxy-mtls->fastify-identity', 'the scenarios are listed')
  t.match(stdout, "'ocsp' names the OCSP family: mtls:ocsp-certs, mtls+ocsp-stapling, mtls+revocation:cached", 'and the group')
  t.equal(stderr, '')
})

t.test('a misspelt scenario is an error, not a run without it', async t => {
  const error = await runBench(['--smoke', '--scenarios', 'mtls,nginx-mtls->fastify']).then(() => null, err => err)
  t.equal(error?.code, 2)
  t.match(error?.stderr, 'unknown scenario nginx-mtls->fastify')
})

t.test('pnpm bench --smoke measures every scenario by server CPU and writes smoke.json, .md and .svg, never latest.*', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const { stdout } = await runBench(['--smoke', '--out', out])
  t.same((await readdir(out)).sort(), ['smoke.json', 'smoke.md', 'smoke.svg'], 'latest.* is a full run\'s alone')
  const results = JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario).slice(0, NODE_SCENARIOS.length), NODE_SCENARIOS)
  t.same([...results.scenarios.slice(NODE_SCENARIOS.length), ...results.skipped].map(row => row.scenario).sort(), [...PROXY_SCENARIOS, ...(hybrid ? [] : ['node-mtls:x25519mlkem768'])].sort(), 'every proxy scenario (and the post-quantum one) either ran or is listed as skipped')
  for (const row of results.scenarios) {
    const proxy = PROXY_SCENARIOS.includes(row.scenario)
    // An unseen scenario measures new connections with certificates the server has not seen: no keep-alive, no resumption.
    const unseen = UNSEEN.includes(row.scenario)
    t.match(row, { scenario: String, openssl: String, serverCpuUs: { keepAlive: unseen ? null : Number, fullHandshake: Number } }, `${row.scenario}: the JSON has the figures`)
    if (row.scenario !== 'nginx-mtls') t.equal(row.node, process.versions.node, `${row.scenario}: the server (or the app behind the proxy) ran on this Node`)
    // A proxy's CPU time comes in clock ticks of 10 ms: a smoke window may read none of them.
    for (const metric of unseen ? ['fullHandshake'] : ['keepAlive', 'fullHandshake']) t.ok(proxy ? row.serverCpuUs[metric] >= 0 : row.serverCpuUs[metric] > 0, `${row.scenario}: server CPU per ${metric} measured (${row.serverCpuUs[metric]})`)
    // Every round's figure is kept, with the spread: one round here, so min = median = max = that round.
    for (const metric of METRICS) {
      const figure = row.serverCpuUs[metric]
      t.same(row.serverCpuUsRounds[metric], [figure], `${row.scenario}: the round's ${metric} figure kept`)
      t.same(row.serverCpuUsSpread[metric], figure === null ? null : { min: figure, median: figure, max: figure }, `${row.scenario}: the ${metric} spread`)
    }
    t.equal(row.keepAlive.requests, unseen ? null : 200, `${row.scenario}: every keep-alive request answered`)
    // Behind a proxy, authz allows a request only when the app read the client's identity from the forwarded certificate.
    t.equal(row.keepAlive.errors, unseen ? null : 0, `${row.scenario}: without errors or refusals`)
    t.equal(row.connectionErrors, 0, `${row.scenario}: every new connection answered`)
    t.equal(row.ocsp === null, !OCSP_SCENARIOS.includes(row.scenario), `${row.scenario}: OCSP figures for the OCSP family alone`)
    if (row.scenario === 'http' || unseen) {
      t.equal(row.serverCpuUs.resumedHandshake, null, `${row.scenario}: no resumed handshake`)
    } else {
      t.ok(row.serverCpuUs.resumedHandshake > 0 || proxy, `${row.scenario}: server CPU per resumed handshake measured`)
      t.ok(row.resumedShare > 0.5, `${row.scenario}: resumed connections really resumed (${row.resumedShare})`)
    }
  }
  const byName = name => results.scenarios.find(row => row.scenario === name)
  t.ok(byName('mtls').serverCpuUs.fullHandshake > byName('http').serverCpuUs.fullHandshake, 'an mTLS handshake costs the server more than a plain connection')
  // The full stack against Fastify with the same TLS options: the paired ratio of the round's two figures.
  const stack = byName('mtls+identity+authz')
  const base = byName('fastify-tls-options')
  t.equal(stack.vsBaseline.baseline, 'fastify-tls-options')
  const ratio = stack.serverCpuUs.fullHandshake / base.serverCpuUs.fullHandshake
  t.ok(Math.abs(stack.vsBaseline.fullHandshake.median - ratio) < 0.001, `the full-handshake ratio is the round's pair (${stack.vsBaseline.fullHandshake.median})`)
  t.same(stack.vsBaseline.fullHandshake.rounds, [stack.vsBaseline.fullHandshake.median])
  t.equal(byName('node-mtls').vsBaseline, null, 'node:https is the floor: no baseline')
  t.match(results.machine.calibration, { measure: /P-256 ECDSA/, rounds: [Number], median: Number }, 'a calibration measured in the same run')
  t.ok(results.machine.calibration.median > 0)
  t.same(Object.keys(results.importMs).sort(), [...PACKAGES].sort())
  for (const name of PACKAGES) t.ok(results.importMs[name] > 0, `import time of ${name} measured`)
  for (const skip of results.skipped) t.match(skip.reason, /^no (nginx|haproxy) binary on the PATH \(apt-get install (nginx|haproxy)\)$|offers no hybrid post-quantum group/, `${skip.scenario}: skipped with its reason`)
  // The key exchange alone differs: each server agreed its group with the load (checked at its start), paired as a ratio.
  if (hybrid) t.match(byName('node-mtls:x25519mlkem768').vsBaseline, { baseline: 'node-mtls:x25519', fullHandshake: { median: Number } })
  t.match(results.machine, { node: process.versions.node, mode: 'smoke' })
  const markdown = await readFile(join(out, 'smoke.md'), 'utf8')
  t.match(markdown, /\| mtls\+identity\+authz \| Node [\d.]+, OpenSSL [\d.]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \|/)
  t.match(markdown, /\*\*mtls\+identity\+authz vs fastify-tls-options, .*full handshake \+ request \d+\.\d\d ×/, 'the headline is a ratio')
  t.match(markdown, /\| mtls\+identity\+authz \| fastify-tls-options \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/, 'each ratio in the table')
  t.match(markdown, /Calibration: a P-256 ECDSA verification took [\d.]+ µs/)
  const svg = await readFile(join(out, 'smoke.svg'), 'utf8')
  t.match(svg, /^<svg [^>]+>[\s\S]*per keep-alive request[\s\S]*per new connection[\s\S]*per resumed connection[\s\S]*<\/svg>\n$/, 'one panel per metric')
  t.match(stdout, `results in ${out}: smoke.json, smoke.md, smoke.svg`)
})

t.test('--scenarios ocsp runs the OCSP family: the server staples, a cached certificate makes no lookup, an unseen one makes one each', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await runBench(['--smoke', '--scenarios', 'ocsp', '--out', out])
  const results = JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario), OCSP_SCENARIOS, 'the group names the five scenarios, and only them')
  const byName = name => results.scenarios.find(row => row.scenario === name)
  // The smoke window makes 12 new connections per scenario (12 unseen certificates): every one answered.
  for (const row of results.scenarios) {
    t.equal(row.connectionErrors, 0, `${row.scenario}: every new connection answered`)
    t.ok(row.serverCpuUs.fullHandshake > 0, `${row.scenario}: server CPU per full handshake measured (${row.serverCpuUs.fullHandshake})`)
  }
  // The client asked for a staple on every connection: only the stapling server gave one, on every full handshake.
  t.same(results.scenarios.map(row => [row.scenario, row.ocsp.stapledShare]), OCSP_SCENARIOS.map(name => [name, name === 'mtls+ocsp-stapling' ? 1 : 0]))
  // The responder answered one request per new connection for the uncached certificates, none for the cached one.
  t.same(results.scenarios.map(row => [row.scenario, row.ocsp.lookupsPerConnection]), OCSP_SCENARIOS.map(name => [name, name === 'mtls+revocation:uncached' ? 1 : 0]))
  // Each is paired with the scenario it differs from by one thing; `mtls`, the family's baseline's, did not run.
  t.equal(byName('mtls:ocsp-certs').vsBaseline, null)
  for (const [name, baseline] of [['mtls+ocsp-stapling', 'mtls:ocsp-certs'], ['mtls+revocation:cached', 'mtls:ocsp-certs'], ['mtls:ocsp-certs:unseen', 'mtls:ocsp-certs'], ['mtls+revocation:uncached', 'mtls:ocsp-certs:unseen']]) {
    t.match(byName(name).vsBaseline, { baseline, fullHandshake: { median: Number } }, `${name} over ${baseline}`)
  }
  t.equal(byName('mtls+revocation:uncached').vsBaseline.keepAlive, null, 'no keep-alive figure for first connections')
  const markdown = await readFile(join(out, 'smoke.md'), 'utf8')
  t.match(markdown, /staples received on .*mtls\+ocsp-stapling 100%/)
  t.match(markdown, /per new connection: .*mtls\+revocation:uncached 1\.00\. The responder .* is not counted in the server's CPU/)
  t.match(markdown, '| mtls+revocation:uncached | mtls:ocsp-certs:unseen | – |')
})

t.test('a proxy scenario whose binary is not on the PATH is listed as skipped, with the reason, and the rest still runs', async t => {
  // The PATH without the directories that hold nginx or HAProxy; the bench's other tools must remain.
  const path = process.env.PATH.split(':').filter(entry => !existsSync(join(entry, 'nginx')) && !existsSync(join(entry, 'haproxy'))).join(':')
  const missing = ['sh', 'taskset', 'getconf'].filter(tool => !path.split(':').some(entry => existsSync(join(entry, tool))))
  if (missing.length > 0) return t.skip(`${missing.join(', ')} live beside nginx or haproxy here`)
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  // Some scenarios only: no import times (the smoke test above measures them), and still smoke.*, not partial.*.
  await runBench(['--smoke', '--scenarios', 'http,nginx-mtls->fastify-identity,haproxy-mtls->fastify-identity', '--out', out], { env: { ...process.env, PATH: path } })
  const results = JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario), ['http'])
  t.same(results.skipped, [
    { scenario: 'nginx-mtls->fastify-identity', reason: 'no nginx binary on the PATH (apt-get install nginx)' },
    { scenario: 'haproxy-mtls->fastify-identity', reason: 'no haproxy binary on the PATH (apt-get install haproxy)' }
  ])
  t.equal(results.importMs, null, 'a run of some scenarios measures only those')
  t.match(await readFile(join(out, 'smoke.md'), 'utf8'), '| haproxy-mtls->fastify-identity | skipped: no haproxy binary on the PATH (apt-get install haproxy) |')
})
