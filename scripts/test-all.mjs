// Runs every workspace package's tests (tap, then tsd) one package at a time on the Node running it, then
// every package's tap tests again on Node 24 with undici 8 (both fetched once into a local cache; see
// runtimes.mjs), then the consumer test (consumer-test.mjs: the packed packages installed with npm in an app
// outside the workspace). Ends with a line counting tests, not assertions: tap tests and subtests (once per Node
// version), tsd assertions and consumer-test checks. Exits non-zero if anything failed, coverage included.
// MTLS_TEST_NODE24=0 skips the Node 24 runs, MTLS_TEST_CONSUMER=0 the consumer test (for a quick local check).
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { RUNTIMES, node24Run } from './runtimes.mjs'

const root = new URL('..', import.meta.url).pathname
const workspaceDirs = ['packages', 'examples']
  .filter(dir => existsSync(join(root, dir)))
  .flatMap(dir => readdirSync(join(root, dir)).map(name => join(root, dir, name)))
  .concat(join(root, 'bench'))
  .filter(dir => existsSync(join(dir, 'package.json')))

const totals = { passed: 0, failed: 0, skipped: 0 }
const assertions = { passed: 0, failed: 0 }
const counted = [] // what the closing line adds up
const problems = []

function run (cwd, command, args = [], env = process.env) {
  return new Promise(resolve => {
    let stdout = ''
    let stderr = ''
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', chunk => { stdout += chunk; process.stdout.write(chunk) })
    child.stderr.on('data', chunk => { stderr += chunk; process.stderr.write(chunk) })
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

const script = (cwd, name, args = [], env = process.env) => run(cwd, 'pnpm', ['run', '--silent', name, ...args], env)

/**
 * Counts the tests in tap's raw TAP output: every subtest at every depth, by the result point that closes its
 * `# Subtest:` block at the same indentation (4 spaces a level). Other points are assertions, except SKIP and
 * TODO points, which are subtests that did not run. Depth 0 holds the test files: a file counts as one test
 * only when it has no subtests of its own, or when it failed although none of its subtests did (a crash, an
 * unfinished plan, a timeout).
 */
function countTapTests (output) {
  const counts = { passed: 0, failed: 0, skipped: 0, assertions: { passed: 0, failed: 0 }, failures: [] }
  const open = [] // `# Subtest:` blocks whose result point has not come yet
  let yaml = null // the indentation of the YAML diagnostics block being skipped
  let pointIndent = null // the indentation of the point just before, whose YAML block may follow
  for (const line of output.split('\n')) {
    const indent = line.length - line.trimStart().length
    const text = line.trim()
    if (yaml !== null) {
      if (text === '...' && indent === yaml) yaml = null
      continue
    }
    if (text === '---' && pointIndent !== null && indent === pointIndent + 2) {
      yaml = indent
      pointIndent = null
      continue
    }
    pointIndent = null
    const depth = Math.floor(indent / 4)
    const subtest = /^# Subtest: (.*)$/.exec(text)
    if (subtest !== null) {
      open.push({ depth, name: subtest[1], subtests: 0, failed: 0 })
      continue
    }
    const point = /^(not )?ok\b(?:\s+\d+)?(?:\s+-)?\s*(.*)$/.exec(text)
    if (point === null) continue
    pointIndent = indent
    const ok = point[1] === undefined
    const [name, ...directives] = point[2].split(/(?<!\\) # /)
    const skipped = directives.some(directive => /^(SKIP|TODO)\b/i.test(directive))
    const block = open.at(-1)?.depth === depth ? open.pop() : null
    const parent = open.at(-1)
    const path = [...open.map(test => test.name), block?.name ?? name].join(' > ')
    const count = () => {
      if (skipped) counts.skipped += 1
      else if (ok) counts.passed += 1
      else {
        counts.failed += 1
        counts.failures.push(path)
      }
      if (parent !== undefined) {
        parent.subtests += 1
        if (!ok && !skipped) parent.failed += 1
      }
    }
    if (depth === 0) {
      // a test file
      if (block === null || block.subtests === 0) count()
      else if (!ok && block.failed === 0) {
        counts.failed += 1
        counts.failures.push(`${block.name} (outside its tests)`)
      }
    } else if (block !== null || skipped) {
      count()
    } else if (ok) {
      counts.assertions.passed += 1
    } else {
      counts.assertions.failed += 1
    }
  }
  return counts
}

async function tap (dir, pkg, runtime, args, env) {
  console.log(`\n=== ${pkg.name}: tap (${runtime}) ===`)
  // Raw TAP (what tap prints anyway when its output is not a terminal), so the tests can be counted.
  const { code, stdout } = await script(dir, 'test:unit', ['--reporter=tap', ...args], env)
  const counts = countTapTests(stdout)
  totals.passed += counts.passed
  totals.failed += counts.failed
  totals.skipped += counts.skipped
  assertions.passed += counts.assertions.passed
  assertions.failed += counts.assertions.failed
  if (code !== 0 && counts.failed === 0) {
    totals.failed += 1 // a run that failed without a failing test: coverage below threshold, or a crash
    problems.push(`${pkg.name} (${runtime}): tap exited ${code} (coverage below threshold or a crash; see above)`)
  } else if (code !== 0) {
    const names = counts.failures.slice(0, 5).join('; ') + (counts.failures.length > 5 ? '; …' : '')
    problems.push(`${pkg.name} (${runtime}): ${counts.failed} failing tap test(s): ${names}`)
  } else if (counts.passed === 0) {
    totals.failed += 1
    problems.push(`${pkg.name} (${runtime}): tap passed but no test could be counted in its output`)
  }
}

const TSD_ASSERTIONS = new Set(['expectType', 'expectNotType', 'expectAssignable', 'expectNotAssignable', 'expectError',
  'expectDeprecated', 'expectNotDeprecated', 'expectNever', 'expectDocCommentIncludes'])

/** tsd's assertion calls in a package's type tests (tsd reports no count), with the lines each spans. */
function tsdAssertions (dir, pkg) {
  const testDir = join(dir, pkg.tsd?.directory ?? 'test-d')
  if (!existsSync(testDir)) return []
  const files = readdirSync(testDir, { recursive: true }).filter(file => /\.tsx?$/.test(file)).map(file => join(testDir, file))
  const calls = []
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const local = new Map() // local name -> tsd's name, from `import { expectType as t } from 'tsd'`
    const namespaces = new Set() // `import * as tsd from 'tsd'`
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) || statement.moduleSpecifier.text !== 'tsd') continue
      const bindings = statement.importClause?.namedBindings
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) namespaces.add(bindings.name.text)
      else for (const element of bindings?.elements ?? []) local.set(element.name.text, (element.propertyName ?? element.name).text)
    }
    const visit = node => {
      if (ts.isCallExpression(node)) {
        const callee = node.expression
        const name = ts.isIdentifier(callee)
          ? local.get(callee.text)
          : ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && namespaces.has(callee.expression.text)
            ? callee.name.text
            : undefined
        if (TSD_ASSERTIONS.has(name)) {
          const line = position => source.getLineAndCharacterOfPosition(position).line + 1
          calls.push({ file: relative(dir, file), first: line(node.getStart(source)), last: line(node.getEnd()) })
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return calls
}

async function tsd (dir, pkg) {
  console.log(`\n=== ${pkg.name}: tsd ===`)
  const calls = tsdAssertions(dir, pkg)
  const { code, stdout, stderr } = await script(dir, 'test:types')
  if (code === 0 && calls.length > 0) {
    totals.passed += calls.length
    console.log(`${calls.length} type assertions of ${pkg.name} passed`)
    return
  }
  if (code === 0) {
    totals.failed += 1
    problems.push(`${pkg.name}: tsd passed, but no tsd assertion was found in its type tests`)
    return
  }
  // tsd prints `  test-d/file.test-d.ts:3:0` and then `  ✖  LINE:COL  message` per error: an error inside an
  // assertion's lines fails that assertion; any other error (an import that fails, say) counts as one more failure.
  const failing = new Set()
  let outside = 0
  let file = null
  for (const line of (stdout + stderr).split('\n')) {
    const header = /^\s+(\S+\.tsx?):\d+:\d+\s*$/.exec(line)
    if (header !== null) file = header[1]
    const error = /^\s+✖\s+(\d+):\d+\s/.exec(line)
    if (error === null) continue
    const call = calls.find(call => call.file === file && call.first <= Number(error[1]) && Number(error[1]) <= call.last)
    if (call === undefined) outside += 1
    else failing.add(call)
  }
  const failed = Math.max(1, failing.size + outside)
  totals.passed += calls.length - failing.size
  totals.failed += failed
  problems.push(`${pkg.name}: ${failing.size} of ${calls.length} tsd assertions failed` +
    (outside > 0 ? `, and ${outside} type error(s) outside any assertion` : '') + ' (see above)')
}

const packages = workspaceDirs.map(dir => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
const runtimes = [`Node ${process.versions.node}`]
const notRun = [] // runs skipped on purpose, named on the closing line
for (const { dir, pkg } of packages) {
  const scripts = pkg.scripts ?? {}
  if (scripts['test:unit'] !== undefined) await tap(dir, pkg, runtimes[0], [], process.env)
  if (scripts['test:types'] !== undefined) await tsd(dir, pkg)
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
    runtimes.push(`Node ${RUNTIMES.node24.version}`)
    for (const { dir, pkg } of packages) {
      if (pkg.scripts?.['test:unit'] !== undefined) await tap(dir, pkg, runtime, node24.tapArgs, node24.env)
    }
  }
} else {
  notRun.push('the Node 24 runs (MTLS_TEST_NODE24=0)')
}
counted.push(`tap tests and subtests on ${runtimes.join(' and ')}`, 'tsd assertions')

if (process.env.MTLS_TEST_CONSUMER === '0') {
  console.log('\n=== consumer test: skipped (MTLS_TEST_CONSUMER=0) ===')
  notRun.push('the consumer test (MTLS_TEST_CONSUMER=0)')
} else {
  console.log('\n=== consumer test: the packed packages installed with npm outside the workspace ===')
  const { code, stdout } = await run(root, process.execPath, [join(root, 'scripts', 'consumer-test.mjs')])
  const summary = /^consumer test: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/m.exec(stdout)
  counted.push('consumer-test checks')
  if (summary === null) {
    totals.failed += 1
    problems.push(`consumer test: exited ${code} without its closing line (see above)`)
  } else {
    totals.passed += Number(summary[1])
    totals.failed += Number(summary[2])
    totals.skipped += Number(summary[3] ?? 0)
    if (code !== 0) {
      const failing = stdout.split('\n').filter(line => line.startsWith('not ok')).map(line => line.replace(/^not ok \d+ - /, ''))
      totals.failed += Number(summary[2]) === 0 ? 1 : 0
      problems.push(`consumer test: ${failing.length > 0 ? failing.join('; ') : `exited ${code}`}`)
    }
  }
}

console.log('')
for (const problem of problems) console.log(`FAILED ${problem}`)
console.log(`tap assertions (not counted below): ${assertions.passed} passed, ${assertions.failed} failed`)
console.log(`${totals.passed} tests passed, ${totals.failed} failed${totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''} (${counted.join(', ')})` +
  (notRun.length > 0 ? `; not run: ${notRun.join(', ')}` : ''))
process.exitCode = totals.failed === 0 && totals.passed > 0 ? 0 : 1
