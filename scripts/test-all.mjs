// Runs every workspace package's tests (tap, then tsd) one package at a time on the Node running it, then
// every package's tap tests again on Node 24 with undici 8 (both fetched once into a local cache; see
// runtimes.mjs), and ends with a plain `N passed, N failed` line counting them all. Exits non-zero if anything
// failed, coverage included. MTLS_TEST_NODE24=0 skips the second run (for a quick local check).
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RUNTIMES, node24Run } from './runtimes.mjs'

const root = new URL('..', import.meta.url).pathname
const workspaceDirs = ['packages', 'examples']
  .filter(dir => existsSync(join(root, dir)))
  .flatMap(dir => readdirSync(join(root, dir)).map(name => join(root, dir, name)))
  .concat(join(root, 'bench'))
  .filter(dir => existsSync(join(dir, 'package.json')))

const totals = { passed: 0, failed: 0, skipped: 0 }
const problems = []

function run (cwd, script, args = [], env = process.env) {
  return new Promise(resolve => {
    let output = ''
    const child = spawn('pnpm', ['run', '--silent', script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', chunk => { output += chunk; process.stdout.write(chunk) })
    child.stderr.on('data', chunk => { output += chunk; process.stderr.write(chunk) })
    child.on('close', code => resolve({ code, output }))
  })
}

async function tap (dir, pkg, runtime, args, env) {
  console.log(`\n=== ${pkg.name}: tap (${runtime}) ===`)
  const { code, output } = await run(dir, 'test:unit', args, env)
  // tap's closing summary: `# { total: N, pass: N, fail: N, skip: N }`
  const summary = [...output.matchAll(/^# \{ total: (\d+)(.*)\}$/gm)].pop()
  const count = name => Number(summary?.[2].match(new RegExp(`${name}: (\\d+)`))?.[1] ?? 0)
  totals.passed += count('pass')
  totals.failed += count('fail')
  totals.skipped += count('skip') + count('todo')
  if (code !== 0 && count('fail') === 0) {
    totals.failed += 1 // a run that failed without a failing test: coverage below threshold, or a crash
    problems.push(`${pkg.name} (${runtime}): tap exited ${code} (coverage below threshold or a crash; see above)`)
  } else if (code !== 0) {
    problems.push(`${pkg.name} (${runtime}): ${count('fail')} failing tap test(s)`)
  }
}

const packages = workspaceDirs.map(dir => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
for (const { dir, pkg } of packages) {
  const scripts = pkg.scripts ?? {}
  if (scripts['test:unit'] !== undefined) await tap(dir, pkg, `Node ${process.versions.node}`, [], process.env)
  if (scripts['test:types'] !== undefined) {
    console.log(`\n=== ${pkg.name}: tsd ===`)
    const { code } = await run(dir, 'test:types')
    if (code === 0) {
      totals.passed += 1
      console.log(`type tests of ${pkg.name} passed`)
    } else {
      totals.failed += 1
      problems.push(`${pkg.name}: type tests failed`)
    }
  }
}

if (process.env.MTLS_TEST_NODE24 !== '0') {
  const runtime = `Node ${RUNTIMES.node24.version}, undici ${RUNTIMES.undici8.version}`
  let node24 = null
  try {
    node24 = await node24Run()
  } catch (err) {
    totals.failed += 1
    problems.push(`${runtime}: could not be fetched from the npm registry (${err.message.split('\n')[0]})`)
  }
  if (node24 !== null) {
    for (const { dir, pkg } of packages) {
      if (pkg.scripts?.['test:unit'] !== undefined) await tap(dir, pkg, runtime, node24.tapArgs, node24.env)
    }
  }
}

console.log('')
for (const problem of problems) console.log(`FAILED ${problem}`)
console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''}`)
process.exitCode = totals.failed === 0 && totals.passed > 0 ? 0 : 1
