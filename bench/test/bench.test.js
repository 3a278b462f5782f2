import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)

t.test('pnpm bench --quick runs every scenario and writes JSON, Markdown and SVG', async t => {
  const out = await mkdtemp(join(tmpdir(), 'mtls-bench-test-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const { stdout } = await run(process.execPath, [fileURLToPath(new URL('../src/run.js', import.meta.url)), '--quick', '--out', out], { timeout: 120_000 })
  const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'))
  const expected = ['http', 'tls', 'mtls', 'mtls+identity', 'mtls+identity+authz']
  t.same(results.scenarios.map(row => row.scenario).slice(0, 5), expected)
  t.equal(results.scenarios.length + results.skipped.length, 6, 'nginx-mtls->http either ran or is listed as skipped')
  for (const row of results.scenarios) {
    t.ok(row.keepAlive.requestsPerSecond > 0, `${row.scenario}: keep-alive requests were served`)
    t.equal(row.keepAlive.errors, 0, `${row.scenario}: without errors`)
    t.ok(row.fullHandshakesPerSecond > 0, `${row.scenario}: new connections were made`)
    if (row.scenario !== 'http') t.ok(row.resumedShare > 0.5, `${row.scenario}: resumed connections really resumed (${row.resumedShare})`)
  }
  t.ok(results.client.undici > 0 && results.client.undiciMtls > 0, 'both clients ran')
  if (results.skipped.length > 0) t.match(results.skipped, [{ scenario: 'nginx-mtls->http', reason: /apt-get install nginx/ }])
  t.match(results.machine, { node: process.version, mode: 'quick' })
  t.match(await readFile(join(out, 'latest.md'), 'utf8'), /\| mtls\+identity\+authz \| [\d,]+ \|/)
  t.match(await readFile(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]+>[\s\S]*mtls\+identity\+authz[\s\S]*<\/svg>\n$/)
  t.match(stdout, 'results in')
})
