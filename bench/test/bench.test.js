import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const NODE_SCENARIOS = ['http', 'tls', 'node-mtls', 'fastify-tls-options', 'mtls', 'mtls+identity', 'mtls+identity+authz', 'mtls+identity+authz+logger']
const PACKAGES = ['mtls-core', 'mtls-pki', 'fastify-mtls', 'fastify-mtls-identity', 'fastify-mtls-authz', 'undici-mtls']

t.test('pnpm bench --smoke measures every scenario by server CPU and writes JSON, Markdown and SVG', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const { stdout } = await run(process.execPath, [fileURLToPath(new URL('../src/run.js', import.meta.url)), '--smoke', '--out', out], { timeout: 60_000 })
  const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'))
  t.same(results.scenarios.map(row => row.scenario).slice(0, NODE_SCENARIOS.length), NODE_SCENARIOS)
  t.equal(results.scenarios.length + results.skipped.length, NODE_SCENARIOS.length + 2, 'nginx-mtls and nginx-mtls->http either ran or are listed as skipped')
  for (const row of results.scenarios) {
    const nginx = row.scenario.startsWith('nginx')
    t.match(row, { scenario: String, openssl: String, serverCpuUs: { keepAlive: Number, fullHandshake: Number } }, `${row.scenario}: the JSON has the figures`)
    if (!nginx) t.equal(row.node, process.versions.node, `${row.scenario}: the server ran on this Node`)
    // nginx's CPU time comes in clock ticks of 10 ms: a smoke window may read none of them.
    for (const metric of ['keepAlive', 'fullHandshake']) t.ok(nginx ? row.serverCpuUs[metric] >= 0 : row.serverCpuUs[metric] > 0, `${row.scenario}: server CPU per ${metric} measured (${row.serverCpuUs[metric]})`)
    t.equal(row.keepAlive.requests, 200, `${row.scenario}: every keep-alive request answered`)
    t.equal(row.keepAlive.errors, 0, `${row.scenario}: without errors`)
    t.equal(row.connectionErrors, 0, `${row.scenario}: every new connection answered`)
    if (row.scenario === 'http') {
      t.equal(row.serverCpuUs.resumedHandshake, null, 'plain HTTP has no resumed handshake')
    } else {
      t.ok(row.serverCpuUs.resumedHandshake > 0 || nginx, `${row.scenario}: server CPU per resumed handshake measured`)
      t.ok(row.resumedShare > 0.5, `${row.scenario}: resumed connections really resumed (${row.resumedShare})`)
    }
  }
  const mtls = results.scenarios.find(row => row.scenario === 'mtls')
  const http = results.scenarios.find(row => row.scenario === 'http')
  t.ok(mtls.serverCpuUs.fullHandshake > http.serverCpuUs.fullHandshake, 'an mTLS handshake costs the server more than a plain connection')
  t.same(Object.keys(results.importMs).sort(), [...PACKAGES].sort())
  for (const name of PACKAGES) t.ok(results.importMs[name] > 0, `import time of ${name} measured`)
  if (results.skipped.length > 0) t.match(results.skipped, [{ scenario: 'nginx-mtls', reason: /apt-get install nginx/ }, { scenario: 'nginx-mtls->http' }])
  t.match(results.machine, { node: process.versions.node, mode: 'smoke' })
  const markdown = await readFile(join(out, 'latest.md'), 'utf8')
  t.match(markdown, /\| mtls\+identity\+authz \| Node [\d.]+, OpenSSL [\d.]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \|/)
  const svg = await readFile(join(out, 'latest.svg'), 'utf8')
  t.match(svg, /^<svg [^>]+>[\s\S]*per keep-alive request[\s\S]*per new connection[\s\S]*per resumed connection[\s\S]*<\/svg>\n$/, 'one panel per metric')
  t.match(stdout, 'results in')
})
