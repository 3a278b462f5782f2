// The build (with the lint beside it), then the type check and every workspace package's tests: tap on each of
// TAP_RUNTIMES (Node 22 with the workspace's undici 7, Node 24 with undici 8; both pinned and fetched once into a
// local cache, see runtimes.mjs; the examples' and the bench's on the last one run), tsd once, and the consumer test (consumer-test.mjs: the packed packages installed
// with npm in an app outside the workspace, run on Node 20, 22, 24 and 26). Runs are spread over lanes (one more
// than cores, at most 4; MTLS_TEST_LANES=N), never two of one package at a time (tap keeps its coverage data in the
// package's .tap folder); each run's output is printed whole when it ends. Ends with a line counting tests, not
// assertions: tap tests and subtests (once per runtime), tsd assertions and consumer-test checks, naming each
// runtime as its binary reports itself. Exits non-zero if anything failed, coverage and lint included.
// MTLS_TEST_RUNTIMES=24 (a comma-separated list of Node majors) runs only those, and MTLS_TEST_CONSUMER=0 skips the
// consumer test, for a quick local check. MTLS_TEST_TIME_FACTOR=N multiplies every hang limit (tap's per-file
// limit here, the tests' own through mtls-test-support) on a slow or busy machine.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { CONSUMER_MAJORS, TAP_RUNTIMES, tapRun } from './runtimes.mjs'

const root = new URL('..', import.meta.url).pathname
const bench = join(root, 'bench')
const examplesDir = join(root, 'examples') + '/'
const workspaceDirs = ['packages', 'examples']
  .filter(dir => existsSync(join(root, dir)))
  .flatMap(dir => readdirSync(join(root, dir)).map(name => join(root, dir, name)))
  .concat(bench)
  .filter(dir => existsSync(join(dir, 'package.json')))

const totals = { passed: 0, failed: 0, skipped: 0 }
const assertions = { passed: 0, failed: 0 }
const counted = [] // what the closing line adds up
const problems = []

/** Runs a command to its end, keeping its output (printed by the caller when the run ends, whole). */
function run (cwd, command, args = [], env = process.env) {
  return new Promise(resolve => {
    let stdout = ''
    let stderr = ''
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', chunk => { stdout += chunk })
    child.stderr.on('data', chunk => { stderr += chunk })
    child.on('error', err => { stderr += `${err.message}\n` })
    child.on('close', code => resolve({ code: code ?? 1, stdout, stderr }))
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

/** Prints a finished run's output in one piece, under a header naming it and its wall time. */
function printRun (title, started, { stdout, stderr }) {
  process.stdout.write(`\n=== ${title} (${((Date.now() - started) / 1000).toFixed(1)} s) ===\n${stdout}${stderr}`)
}

async function tap (dir, pkg, runtime, args, env) {
  const started = Date.now()
  // Raw TAP (what tap prints anyway when its output is not a terminal), so the tests can be counted.
  const result = await script(dir, 'test:unit', ['--reporter=tap', `--timeout=${FILE_HANG_LIMIT}`, ...args], env)
  printRun(`${pkg.name}: tap (${runtime})`, started, result)
  const { code, stdout } = result
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
  const started = Date.now()
  const calls = tsdAssertions(dir, pkg)
  const result = await script(dir, 'test:types')
  printRun(`${pkg.name}: tsd`, started, result)
  const { code, stdout, stderr } = result
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

/** MTLS_TEST_TIME_FACTOR, as mtls-test-support reads it: a number of at least 1, 1 when unset. */
function timeFactor (value) {
  if (value === undefined || value === '') return 1
  const factor = Number(value)
  if (!Number.isFinite(factor) || factor < 1) throw new Error(`MTLS_TEST_TIME_FACTOR must be a number of at least 1, got ${JSON.stringify(value)}`)
  return factor
}

// tap's limit for one test file, in seconds: a hang limit only. The slowest file takes about 40 s on a quiet
// two-core machine and three times that with both cores busy elsewhere.
const FILE_HANG_LIMIT = Math.round(300 * timeFactor(process.env.MTLS_TEST_TIME_FACTOR))

/** The Node majors asked for with MTLS_TEST_RUNTIMES (all when unset). */
function chosen (major) {
  const wanted = process.env.MTLS_TEST_RUNTIMES
  return wanted === undefined || wanted === '' || wanted.split(',').map(Number).includes(major)
}

async function consumerTest () {
  const started = Date.now()
  const env = { ...process.env, MTLS_CONSUMER_MAJORS: CONSUMER_MAJORS.filter(chosen).join(',') }
  const result = await run(root, process.execPath, [join(root, 'scripts', 'consumer-test.mjs')], env)
  printRun('consumer test: the packed packages installed with npm outside the workspace', started, result)
  const { code, stdout } = result
  const summary = /^consumer test: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/m.exec(stdout)
  if (summary === null) {
    totals.failed += 1
    problems.push(`consumer test: exited ${code} without its closing line (see above)`)
    return
  }
  totals.passed += Number(summary[1])
  totals.failed += Number(summary[2])
  totals.skipped += Number(summary[3] ?? 0)
  if (code !== 0) {
    const failing = stdout.split('\n').filter(line => line.startsWith('not ok')).map(line => line.replace(/^not ok \d+ - /, ''))
    totals.failed += Number(summary[2]) === 0 ? 1 : 0
    problems.push(`consumer test: ${failing.length > 0 ? failing.join('; ') : `exited ${code}`}`)
  }
}

/**
 * Runs the jobs over `lanes` at once, biggest first, never two jobs of one package together (tap keeps its
 * coverage data in the package's .tap folder, and tests may write beside themselves).
 */
async function runJobs (jobs, lanes) {
  const waiting = [...jobs].sort((a, b) => b.weight - a.weight)
  const busy = new Set()
  const asleep = [] // lanes waiting for a package to come free
  const wake = () => { for (const resolve of asleep.splice(0)) resolve() }
  const lane = async () => {
    while (waiting.length > 0) {
      const index = waiting.findIndex(job => !busy.has(job.key))
      if (index === -1) {
        await new Promise(resolve => asleep.push(resolve))
        continue
      }
      const [job] = waiting.splice(index, 1)
      busy.add(job.key)
      try {
        await job.run()
      } finally {
        busy.delete(job.key)
        wake()
      }
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane))
}

/** A check that counts no tests (lint, a type check): a failure counts as one failed test, with its output above. */
async function check (title, cwd, name) {
  const started = Date.now()
  const result = await script(cwd, name)
  printRun(title, started, result)
  if (result.code !== 0) {
    totals.failed += 1
    problems.push(`${title}: exited ${result.code} (see above)`)
  }
}

const packages = workspaceDirs.map(dir => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
// How long a package's run takes, roughly: its test files.
const weight = dir => existsSync(join(dir, 'test')) ? readdirSync(join(dir, 'test'), { recursive: true }).filter(file => /\.test\.[mc]?[jt]s$/.test(file)).length : 0
const runtimes = []
const notRun = [] // runs skipped on purpose, named on the closing line
const jobs = []

const lastChosen = TAP_RUNTIMES.filter(runtime => chosen(runtime.major)).at(-1)
for (const runtime of TAP_RUNTIMES) {
  if (!chosen(runtime.major)) {
    notRun.push(`the Node ${runtime.major} tap runs (MTLS_TEST_RUNTIMES)`)
    continue
  }
  let setup
  try {
    setup = await tapRun(runtime)
  } catch (err) {
    totals.failed += 1
    problems.push(`Node ${runtime.major}: could not be fetched from the npm registry (${err.message.split('\n')[0]})`)
    continue
  }
  runtimes.push(setup.label)
  for (const { dir, pkg } of packages) {
    if (pkg.scripts?.['test:unit'] === undefined) continue
    // Once, on the last runtime: the bench's tests check its harness (arguments, result files, a smoke run), and the
    // examples' run the packages end to end (real proxies, a Workload API, the demo) as the packages' own suites,
    // which run on every runtime, already do part by part.
    if ((dir === bench || dir.startsWith(examplesDir)) && runtime !== lastChosen) continue
    jobs.push({ key: dir, weight: weight(dir), run: () => tap(dir, pkg, setup.label, setup.tapArgs, setup.env) })
  }
}
for (const { dir, pkg } of packages) {
  if (pkg.scripts?.['test:types'] !== undefined) jobs.push({ key: dir, weight: 1, run: () => tsd(dir, pkg) })
}
// The type check (one program for the workspace: tsconfig.typecheck.json) shares the lanes, first, so that its
// failures show early.
jobs.push({ key: 'typecheck', weight: 1e6, run: () => check('typecheck', root, 'typecheck') })
counted.push(`tap tests and subtests on ${runtimes.join(' and ') || 'no runtime'}${runtimes.length > 1 ? ' (the examples\' and the bench\'s on the last)' : ''}`, 'tsd assertions')
if (process.env.MTLS_TEST_CONSUMER === '0') {
  notRun.push('the consumer test (MTLS_TEST_CONSUMER=0)')
} else {
  counted.push('consumer-test checks')
  // First: it waits on npm and the disk more than it computes.
  jobs.push({ key: root, weight: Infinity, run: consumerTest })
}

// One lane more than cores: the tests wait on timers, sockets and child processes about as much as they compute.
const lanes = Number(process.env.MTLS_TEST_LANES) > 0 ? Math.floor(Number(process.env.MTLS_TEST_LANES)) : Math.min(4, availableParallelism() + 1)
console.log(`test-all: the build, then ${jobs.length} runs over ${lanes} lanes; tap's hang limit per file ${FILE_HANG_LIMIT} s`)
// The lint reads sources only: it runs beside the build (one core each), which everything else waits for (dist/).
const linted = check('lint', root, 'lint')
const buildStarted = Date.now()
const built = await script(root, 'build')
if (built.code === 0) {
  console.log(`\n=== build (${((Date.now() - buildStarted) / 1000).toFixed(1)} s) ===`)
  await Promise.all([linted, runJobs(jobs, lanes)])
} else {
  printRun('build', buildStarted, built)
  totals.failed += 1
  problems.push(`build: exited ${built.code} (see above); nothing else was run`)
  await linted
}

console.log('')
for (const problem of problems) console.log(`FAILED ${problem}`)
console.log(`tap assertions (not counted below): ${assertions.passed} passed, ${assertions.failed} failed`)
console.log(`${totals.passed} tests passed, ${totals.failed} failed${totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''} (${counted.join(', ')})` +
  (notRun.length > 0 ? `; not run: ${notRun.join(', ')}` : ''))
process.exitCode = totals.failed === 0 && totals.passed > 0 ? 0 : 1
