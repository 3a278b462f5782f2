import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const NODE_SCENARIOS = ['http', 'tls', 'node-mtls', 'fastify-tls-options', 'mtls', 'mtls+identity', 'mtls+identity+authz', 'mtls+identity+authz+logger', 'x509source:mtls+identity+authz', 'x509source-federated:mtls+identity+authz']
const PROXY_SCENARIOS = ['nginx-mtls', 'nginx-mtls->http', 'nginx-mtls->fastify-identity', 'haproxy-mtls->fastify-identity']
const runBench = (args, options = {}) => run(process.execPath, [fileURLToPath(new URL('../src/run.js', import.meta.url)), ...args], { timeout: 60_000, ...options })
const PACKAGES = ['mtls-core', 'mtls-pki', 'fastify-mtls', 'fastify-mtls-identity', 'fastify-mtls-authz', 'undici-mtls']

t.test('pnpm bench --smoke measures every scenario by server CPU and writes JSON, Markdown and SVG', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const { stdout } = await runBench(['--smoke', '--out', out])
  const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario).slice(0, NODE_SCENARIOS.length), NODE_SCENARIOS)
  t.same([...results.scenarios, ...results.skipped].map(row => row.scenario).slice(NODE_SCENARIOS.length).sort(), [...PROXY_SCENARIOS].sort(), 'every proxy scenario either ran or is listed as skipped')
  for (const row of results.scenarios) {
    const proxy = PROXY_SCENARIOS.includes(row.scenario)
    t.match(row, { scenario: String, openssl: String, serverCpuUs: { keepAlive: Number, fullHandshake: Number } }, `${row.scenario}: the JSON has the figures`)
    if (row.scenario !== 'nginx-mtls') t.equal(row.node, process.versions.node, `${row.scenario}: the server (or the app behind the proxy) ran on this Node`)
    // A proxy's CPU time comes in clock ticks of 10 ms: a smoke window may read none of them.
    for (const metric of ['keepAlive', 'fullHandshake']) t.ok(proxy ? row.serverCpuUs[metric] >= 0 : row.serverCpuUs[metric] > 0, `${row.scenario}: server CPU per ${metric} measured (${row.serverCpuUs[metric]})`)
    t.equal(row.keepAlive.requests, 200, `${row.scenario}: every keep-alive request answered`)
    // Behind a proxy, authz allows a request only when the app read the client's identity from the forwarded certificate.
    t.equal(row.keepAlive.errors, 0, `${row.scenario}: without errors or refusals`)
    t.equal(row.connectionErrors, 0, `${row.scenario}: every new connection answered`)
    if (row.scenario === 'http') {
      t.equal(row.serverCpuUs.resumedHandshake, null, 'plain HTTP has no resumed handshake')
    } else {
      t.ok(row.serverCpuUs.resumedHandshake > 0 || proxy, `${row.scenario}: server CPU per resumed handshake measured`)
      t.ok(row.resumedShare > 0.5, `${row.scenario}: resumed connections really resumed (${row.resumedShare})`)
    }
  }
  const mtls = results.scenarios.find(row => row.scenario === 'mtls')
  const http = results.scenarios.find(row => row.scenario === 'http')
  t.ok(mtls.serverCpuUs.fullHandshake > http.serverCpuUs.fullHandshake, 'an mTLS handshake costs the server more than a plain connection')
  t.same(Object.keys(results.importMs).sort(), [...PACKAGES].sort())
  for (const name of PACKAGES) t.ok(results.importMs[name] > 0, `import time of ${name} measured`)
  for (const skip of results.skipped) t.match(skip.reason, /^no (nginx|haproxy) binary on the PATH \(apt-get install (nginx|haproxy)\)$/, `${skip.scenario}: skipped with its reason`)
  t.match(results.machine, { node: process.versions.node, mode: 'smoke' })
  const markdown = await readFile(join(out, 'latest.md'), 'utf8')
  t.match(markdown, /\| mtls\+identity\+authz \| Node [\d.]+, OpenSSL [\d.]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \|/)
  const svg = await readFile(join(out, 'latest.svg'), 'utf8')
  t.match(svg, /^<svg [^>]+>[\s\S]*per keep-alive request[\s\S]*per new connection[\s\S]*per resumed connection[\s\S]*<\/svg>\n$/, 'one panel per metric')
  t.match(stdout, 'results in')
})

t.test('a proxy scenario whose binary is not on the PATH is listed as skipped, with the reason, and the rest still runs', async t => {
  // The PATH without the directories that hold nginx or HAProxy; the bench's other tools must remain.
  const path = process.env.PATH.split(':').filter(entry => !existsSync(join(entry, 'nginx')) && !existsSync(join(entry, 'haproxy'))).join(':')
  const missing = ['sh', 'taskset', 'getconf'].filter(tool => !path.split(':').some(entry => existsSync(join(entry, tool))))
  if (missing.length > 0) return t.skip(`${missing.join(', ')} live beside nginx or haproxy here`)
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await runBench(['--smoke', '--scenarios', 'http,nginx-mtls->fastify-identity,haproxy-mtls->fastify-identity', '--out', out], { env: { ...process.env, PATH: path } })
  const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario), ['http'])
  t.same(results.skipped, [
    { scenario: 'nginx-mtls->fastify-identity', reason: 'no nginx binary on the PATH (apt-get install nginx)' },
    { scenario: 'haproxy-mtls->fastify-identity', reason: 'no haproxy binary on the PATH (apt-get install haproxy)' }
  ])
  t.match(await readFile(join(out, 'latest.md'), 'utf8'), '| haproxy-mtls->fastify-identity | skipped: no haproxy binary on the PATH (apt-get install haproxy) |')
})

t.test('a misspelt scenario is an error, not a run without it', async t => {
  const error = await runBench(['--smoke', '--scenarios', 'mtls,nginx-mtls->fastify']).then(() => null, err => err)
  t.equal(error?.code, 2)
  t.match(error?.stderr, 'unknown scenario nginx-mtls->fastify')
})
