// The packages as a user gets them. Packs every workspace package (run `pnpm build` first), checks what each
// tarball carries, installs the tarballs with npm into a fresh app outside the workspace, compiles the code of
// every package README's `## Usage` section there (strict, NodeNext, skipLibCheck off), and runs a Fastify
// server (fastify-mtls, -identity, -authz) and undici-mtls clients against each other, with certificates made
// by the installed mtls-pki, on each pinned Node of runtimes.mjs's CONSUMER_MAJORS (20, 22, 24, 26;
// MTLS_CONSUMER_MAJORS=24,26 for some). Prints `ok`/`not ok` per check and ends with `consumer test: N passed,
// N failed`. MTLS_CONSUMER_KEEP=1 keeps the temporary app. npm's cache lives beside runtimes.mjs's (MTLS_TOOLKIT_CACHE), so a rerun is offline.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { CONSUMER_MAJORS, describeNode, nodeBinary } from './runtimes.mjs'

const root = new URL('..', import.meta.url).pathname
const packagesDir = join(root, 'packages')
const cache = process.env.MTLS_TOOLKIT_CACHE ?? join(homedir(), '.cache', 'mtls-toolkit')
const started = Date.now()

// Limits on the commands below are hang limits only, multiplied by MTLS_TEST_TIME_FACTOR (as the tests' are).
const TIME_FACTOR = Number(process.env.MTLS_TEST_TIME_FACTOR) >= 1 ? Number(process.env.MTLS_TEST_TIME_FACTOR) : 1
const hangLimit = ms => Math.round(ms * TIME_FACTOR)

// Names a README leaves to the reader (its files, its handlers, its port), declared so that the README's own code
// compiles as it is written; everything else a snippet uses must come from the snippet.
const README_PREAMBLES = {
  'fastify-mtls-identity': ['declare const certFile: string, keyFile: string, caFile: string'],
  'fastify-mtls-authz': [
    'declare const certFile: string, keyFile: string, caFile: string',
    'declare function charge (): Promise<{ receipt: string }>',
    'declare function read (): Promise<{ amount: number }>'
  ],
  'mtls-pki': ['declare const port: number']
}

// Packages a README's Usage section imports besides ours; same versions as the workspace.
const EXTRA_DEPENDENCIES = [
  ['fastify', 'packages/fastify-mtls'],
  ['undici', 'packages/undici-mtls'],
  ['@fastify/under-pressure', 'packages/fastify-mtls'],
  ['typescript', '.'],
  ['@types/node', '.']
]

const results = { passed: 0, failed: 0, skipped: 0 }
let number = 0

function report (name, problems) {
  number += 1
  if (problems.length === 0) {
    results.passed += 1
    console.log(`ok ${number} - ${name}`)
  } else {
    results.failed += 1
    console.log(`not ok ${number} - ${name}`)
    for (const problem of problems) console.log(`  # ${problem.replaceAll('\n', '\n  # ')}`)
  }
}

function step (label) {
  console.log(`# ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
}

/** Runs a command to its end; never rejects: the caller reads code, signal and output. */
function exec (file, args, options) {
  return new Promise(resolve => {
    execFile(file, args, { maxBuffer: 64 << 20, killSignal: 'SIGKILL', ...options }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error.code ?? 1), timedOut: error?.killed === true, stdout, stderr })
    })
  })
}

function tail (text, lines = 15) {
  return text.trim().split('\n').slice(-lines).join('\n')
}

function workspaceVersion (name, from) {
  return JSON.parse(readFileSync(realpathSync(join(root, from, 'node_modules', name, 'package.json')), 'utf8')).version
}

/** npm's environment without what pnpm sets for the scripts it runs (npm 11 warns about configs it does not know). */
function npmEnvironment () {
  const keep = new Set(['npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_proxy',
    'npm_config_https_proxy', 'npm_config_noproxy', 'npm_config_cafile', 'npm_config_strict_ssl'])
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_') || keep.has(key.toLowerCase())))
}

function listFiles (dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => entry.isDirectory()
    ? listFiles(join(dir, entry.name), base)
    : [relative(base, join(dir, entry.name))])
}

function exportTargets (exports) {
  if (typeof exports === 'string') return [exports]
  if (exports === null || typeof exports !== 'object') return []
  return Object.values(exports).flatMap(exportTargets)
}

/** What a tarball must carry to publish cleanly; `dir` is the unpacked `package/`, `workspaceDir` the source. */
function checkTarball (dir, workspaceDir) {
  const problems = []
  const files = new Set(listFiles(dir))
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  if (!files.has('LICENSE')) problems.push('no LICENSE file')
  const buildInfo = [...files].filter(file => file.endsWith('.tsbuildinfo'))
  if (buildInfo.length > 0) problems.push(`carries ${buildInfo.join(', ')} (a stale file from an older build? run pnpm clean && pnpm build)`)
  const directory = relative(root, workspaceDir)
  if (typeof pkg.repository?.url !== 'string' || pkg.repository.directory !== directory) {
    problems.push(`repository must give url and directory "${directory}": ${JSON.stringify(pkg.repository)}`)
  }
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}.${name} is still "${range}"`)
    }
  }
  const entryPoints = [pkg.main, pkg.types, ...Object.values(pkg.bin ?? {}), ...exportTargets(pkg.exports)]
  for (const target of entryPoints) {
    if (typeof target !== 'string' || target.includes('*')) continue
    const file = relative(dir, resolve(dir, target))
    if (!files.has(file)) problems.push(`${target} (named in package.json) is not in the tarball: run pnpm build`)
  }
  for (const file of files) {
    if (file.endsWith('.js') || file.endsWith('.d.ts')) {
      const reference = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dir, file), 'utf8'))?.[1]
      if (reference !== undefined && !reference.startsWith('data:') && !files.has(join(dirname(file), reference))) {
        problems.push(`${file} points to ${reference}, which is not in the tarball`)
      }
    }
    if (!file.endsWith('.map')) continue
    const map = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    const missing = map.sources.filter((source, index) => typeof map.sourcesContent?.[index] !== 'string' &&
      !files.has(relative(dir, resolve(dir, dirname(file), map.sourceRoot ?? '', source))))
    if (missing.length === 0) continue
    const stale = missing.some(source => !existsSync(resolve(workspaceDir, dirname(file), map.sourceRoot ?? '', source)))
    problems.push(`${file}: its sources ${missing.join(', ')} are neither inlined nor in the tarball` +
      (stale ? ' (left in dist/ by a build of a source that no longer exists: run pnpm clean && pnpm build)' : ''))
  }
  return problems
}

/** The ```ts and ```js blocks under a README's `## Usage` heading (to the next heading of level 1 or 2), with their lines. */
function usageBlocks (markdown) {
  const blocks = []
  let inUsage = false
  let block = null
  for (const [index, line] of markdown.split('\n').entries()) {
    if (block !== null) {
      if (/^\s*```\s*$/.test(line)) {
        if (inUsage && block.language !== null) blocks.push(block)
        block = null
      } else {
        block.lines.push({ text: line, line: index + 1 })
      }
      continue
    }
    const fence = /^\s*```\s*(\w*)/.exec(line)
    if (fence !== null) {
      const language = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js', mjs: 'js' }[fence[1].toLowerCase()] ?? null
      block = { language, line: index + 1, lines: [] }
      continue
    }
    const heading = /^(#{1,6})\s+(.*?)\s*$/.exec(line)
    if (heading !== null && heading[1].length <= 2) inUsage = heading[1].length === 2 && heading[2] === 'Usage'
  }
  return blocks
}

/** One source file per README and language: the preamble, then every block; `origins` maps its lines back to the README. */
function readmeSources (name, markdown) {
  const sources = []
  for (const language of ['ts', 'js']) {
    const blocks = usageBlocks(markdown).filter(block => block.language === language)
    if (blocks.length === 0) continue
    const lines = []
    const origins = []
    if (language === 'ts') {
      for (const text of README_PREAMBLES[name] ?? []) {
        lines.push(text)
        origins.push(`the preamble for ${name}'s README in scripts/consumer-test.mjs`)
      }
    }
    for (const block of blocks) {
      lines.push(`// README.md, the block at line ${block.line}`)
      origins.push(`packages/${name}/README.md:${block.line}`)
      for (const { text, line } of block.lines) {
        lines.push(text)
        origins.push(`packages/${name}/README.md:${line}`)
      }
    }
    sources.push({ file: `src/readme/${name}.${language}`, text: lines.join('\n') + '\n', origins, blocks: blocks.length })
  }
  return sources
}

// The server and the clients, compiled in the app like the README code and run by each Node.
const SMOKE_TEST = `import Fastify from 'fastify'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'
import { createTestPki } from 'mtls-pki'
import { createMtlsAgent } from 'undici-mtls'
import { Agent, request, type Dispatcher } from 'undici'

// A hang limit, multiplied by MTLS_TEST_TIME_FACTOR like every other (the runner kills this process a little later).
const hangSeconds = 30 * (Number(process.env.MTLS_TEST_TIME_FACTOR) >= 1 ? Number(process.env.MTLS_TEST_TIME_FACTOR) : 1)
setTimeout(() => {
  console.log(\`not ok - the server and the clients did not finish within \${hangSeconds} s\`)
  process.exit(1)
}, hangSeconds * 1000).unref()

const node = \`Node \${process.versions.node}\`
let failures = 0
async function expectStatus (name: string, dispatcher: Dispatcher, status: number, check: (body: Record<string, unknown>) => boolean) {
  try {
    const response = await request(\`https://127.0.0.1:\${port}/api/payments/charge\`, { method: 'POST', dispatcher })
    const text = await response.body.text()
    const body = JSON.parse(text) as Record<string, unknown>
    if (response.statusCode === status && check(body)) {
      console.log(\`ok - \${status}: \${name} (\${node})\`)
      return
    }
    console.log(\`not ok - \${status}: \${name} (\${node}): got \${response.statusCode} \${text}\`)
  } catch (err) {
    console.log(\`not ok - \${status}: \${name} (\${node}): \${String(err)}\`)
  }
  failures += 1
}

const pki = await createTestPki()
const tls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, crl: [...pki.crl], mode: 'optional' })
const app = Fastify({ https: tls.httpsOptions })
await app.register(fastifyMtls, { tls })
await app.register(fastifyMtlsIdentity)
await app.register(fastifyMtlsAuthz, {
  policy: { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }] }
})
app.post('/api/payments/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async req => ({ caller: req.peerIdentity?.id }))
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0

const server = 'spiffe://mycompany.com/production/payment-service'
const orderService = await createMtlsAgent({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca, server })
const inventoryService = await createMtlsAgent({ cert: pki.inventoryService.chain, key: pki.inventoryService.key, ca: pki.ca, server })
const anonymous = new Agent({ connect: { ca: pki.ca } })
try {
  await expectStatus('order-service holds payments:charge', orderService, 200,
    body => body.caller === 'spiffe://mycompany.com/production/order-service')
  await expectStatus('a client without a certificate', anonymous, 401, body => body.code === 'FST_MTLS_AUTHZ_PEER_REQUIRED')
  await expectStatus('inventory-service lacks payments:charge', inventoryService, 403, body => body.code === 'FST_MTLS_AUTHZ_FORBIDDEN')
} finally {
  await Promise.all([orderService.close(), inventoryService.close(), anonymous.close()])
  await app.close()
}

// requirePostQuantum: works where OpenSSL is 3.5 or later (Node 22.20+, 24.5+, 26), refuses to start with its coded
// error elsewhere (Node 20, OpenSSL 3.0). The packages ask OpenSSL; this check expects by the version it reports.
const [opensslMajor, opensslMinor] = process.versions.openssl.split('.').map(Number)
const hybrid = opensslMajor > 3 || (opensslMajor === 3 && opensslMinor >= 5)
const pqName = (what: string, code: string) => \`requirePostQuantum on \${what} \${hybrid ? 'works' : \`refuses to start with \${code}\`} (\${node}, OpenSSL \${process.versions.openssl})\`
const outcome = async <T,>(start: () => Promise<T>) => await start().then(value => ({ value, err: null }), (err: { code?: string, message?: string }) => ({ value: null, err }))
const pqTls = await outcome(() => loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, requirePostQuantum: true }))
const pqAgent = await outcome(() => createMtlsAgent({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca, requirePostQuantum: true }))
const refusedWith = (err: { code?: string, message?: string } | null, code: string) => err?.code === code && /Node\\.js 22\\.20 or later/.test(err.message ?? '')
let pqProblem: string | null = null
if (hybrid && pqTls.value !== null && pqAgent.value !== null) {
  const pqApp = Fastify({ https: pqTls.value.httpsOptions })
  try {
    await pqApp.register(fastifyMtls, { tls: pqTls.value })
    pqApp.get('/', async () => ({ ok: true }))
    await pqApp.listen({ port: 0, host: '127.0.0.1' })
    const pqAddress = pqApp.server.address()
    const response = await request(\`https://127.0.0.1:\${typeof pqAddress === 'object' && pqAddress !== null ? pqAddress.port : 0}/\`, { dispatcher: pqAgent.value })
    await response.body.text()
    if (response.statusCode !== 200 || !pqApp.mtls.status().keyExchange.postQuantumRequired || !pqAgent.value.status().keyExchange.postQuantumRequired) pqProblem = \`got \${response.statusCode}\`
  } catch (err) {
    pqProblem = String(err)
  } finally {
    await pqAgent.value.close()
    await pqApp.close()
  }
}
for (const [what, code, started] of [['loadServerTls', 'FST_MTLS_POST_QUANTUM_UNSUPPORTED', pqTls], ['createMtlsAgent', 'ERR_MTLS_POST_QUANTUM_UNSUPPORTED', pqAgent]] as const) {
  const fine = hybrid ? started.err === null && pqProblem === null : refusedWith(started.err, code)
  console.log(\`\${fine ? 'ok' : 'not ok'} - \${pqName(what, code)}\${fine ? '' : \`: \${started.err === null ? pqProblem ?? 'it started' : \`\${started.err.code}: \${started.err.message}\`}\`}\`)
  if (!fine) failures += 1
}
process.exitCode = failures === 0 ? 0 : 1
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    allowJs: true,
    checkJs: true,
    rootDir: 'src',
    outDir: 'out'
  },
  include: ['src']
}

/** Compiles the README code and the smoke test in one program; reports a check per file and one for the libraries. */
function reportCompilation (output, sources) {
  const diagnostics = []
  for (const line of output.split('\n')) {
    const start = /^(\S.*?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line)
    if (start !== null) diagnostics.push({ file: start[1], line: Number(start[2]), text: `${start[4]}: ${start[5]}` })
    else if (/^error TS\d+/.test(line)) diagnostics.push({ file: null, line: 0, text: line })
    else if (line.startsWith(' ') && diagnostics.length > 0) diagnostics.at(-1).text += `\n${line.trim()}`
  }
  for (const source of sources) {
    const own = diagnostics.filter(diagnostic => diagnostic.file === source.file)
    const where = diagnostic => source.origins?.[diagnostic.line - 1] ?? `${source.file}:${diagnostic.line}`
    report(source.name, own.map(diagnostic => `${where(diagnostic)}: ${diagnostic.text}`))
  }
  const others = diagnostics.filter(diagnostic => !sources.some(source => source.file === diagnostic.file))
  report('the installed packages\' declarations type-check (skipLibCheck: false)',
    others.map(diagnostic => `${diagnostic.file ?? 'tsc'}${diagnostic.file === null ? '' : `:${diagnostic.line}`}: ${diagnostic.text}`))
}

async function main () {
  const names = readdirSync(packagesDir).filter(name => existsSync(join(packagesDir, name, 'package.json'))).sort()
  const work = await mkdtemp(join(tmpdir(), 'mtls-consumer-'))
  const tarballs = join(work, 'tarballs')
  const app = join(work, 'app')
  try {
    step(`packing ${names.join(', ')} into ${tarballs}`)
    await mkdir(tarballs)
    const packed = await Promise.all(names.map(async name => {
      const result = await exec('pnpm', ['pack', '--pack-destination', tarballs, '--json', '--config.ignore-scripts=true'], { cwd: join(packagesDir, name), timeout: hangLimit(60_000) })
      if (result.code !== 0) return { name, error: `pnpm pack exited ${result.code}: ${tail(result.stderr || result.stdout)}` }
      return { name, tarball: JSON.parse(result.stdout).filename }
    }))
    for (const { name, tarball, error } of packed) {
      if (error !== undefined) {
        report(`${name}: the tarball publishes cleanly`, [error])
        continue
      }
      const unpacked = join(work, 'unpacked', name)
      await mkdir(unpacked, { recursive: true })
      const untar = await exec('tar', ['xzf', tarball, '-C', unpacked], { timeout: hangLimit(30_000) })
      report(`${name}: the tarball publishes cleanly (LICENSE, no .tsbuildinfo, source maps with their sources, entry points present)`,
        untar.code === 0 ? checkTarball(join(unpacked, 'package'), join(packagesDir, name)) : [`tar: ${tail(untar.stderr)}`])
    }
    if (packed.some(({ error }) => error !== undefined)) throw new Error('a package could not be packed')

    const extras = EXTRA_DEPENDENCIES.map(([name, from]) => `${name}@${workspaceVersion(name, from)}`)
    step(`installing the tarballs and ${extras.join(', ')} with npm into ${app}`)
    await mkdir(app)
    // The workspace's own overrides (pnpm.overrides: light-my-request 6.6 keeps fastify's cookie 2, which wants Node 22, out).
    const overrides = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).pnpm?.overrides ?? {}
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'mtls-consumer-app', private: true, type: 'module', overrides }, null, 2) + '\n')
    const install = await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--engine-strict', '--save-exact',
      '--loglevel=error', '--cache', join(cache, 'npm'), ...packed.map(({ tarball }) => tarball), ...extras],
    { cwd: app, env: npmEnvironment(), timeout: hangLimit(240_000) })
    if (install.code !== 0) {
      report('npm installs the tarballs', [install.timedOut ? `npm install did not finish within ${hangLimit(240)} s` : `npm install exited ${install.code}: ${tail(install.stderr || install.stdout)}`])
      throw new Error('npm install failed')
    }
    const lock = JSON.parse(await readFile(join(app, 'package-lock.json'), 'utf8'))
    const installProblems = []
    for (const name of names) {
      const resolved = lock.packages[`node_modules/${name}`]?.resolved
      if (resolved?.startsWith('file:') !== true) installProblems.push(`${name} was not installed from its tarball (resolved: ${resolved})`)
      const copies = Object.keys(lock.packages).filter(path => path.endsWith(`/node_modules/${name}`))
      if (copies.length > 0) installProblems.push(`a second copy of ${name}: ${copies.join(', ')}`)
    }
    report('npm installs the tarballs: each package once, from its tarball', installProblems)

    step('compiling the README Usage code and the smoke test (strict, NodeNext, skipLibCheck: false)')
    const sources = []
    for (const name of names) {
      const readme = await readFile(join(app, 'node_modules', name, 'README.md'), 'utf8')
      const files = readmeSources(name, readme)
      if (files.length === 0) {
        report(`${name}: the README's Usage section has code`, [`no \`\`\`ts or \`\`\`js block under "## Usage" in ${name}'s README`])
      }
      for (const source of files) sources.push({ ...source, name: `${name}: the README's Usage code (${source.blocks} block(s), ${source.file.endsWith('.js') ? 'JavaScript' : 'TypeScript'}) compiles` })
    }
    sources.push({ file: 'src/smoke.ts', text: SMOKE_TEST, name: 'the smoke test compiles' })
    await mkdir(join(app, 'src', 'readme'), { recursive: true })
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2) + '\n')
    for (const source of sources) await writeFile(join(app, source.file), source.text)
    const compile = await exec(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.', '--pretty', 'false'],
      { cwd: app, timeout: hangLimit(120_000) })
    if (compile.timedOut) report('tsc', [`tsc did not finish within ${hangLimit(120)} s`])
    else reportCompilation(compile.stdout + compile.stderr, sources)
    if (!existsSync(join(app, 'out', 'smoke.js'))) throw new Error('the smoke test was not compiled')

    // Each pinned Node the smoke test runs on (MTLS_CONSUMER_MAJORS, from test-all.mjs; all of them when unset).
    const majors = (process.env.MTLS_CONSUMER_MAJORS || CONSUMER_MAJORS.join(',')).split(',').map(Number)
    const runtimes = []
    for (const major of majors) {
      try {
        const binary = await nodeBinary(major)
        runtimes.push({ label: await describeNode(binary), binary })
      } catch (err) {
        report(`Node ${major}: fetched from the npm registry`, [err.message.split('\n')[0]])
      }
    }
    for (const { label, binary } of runtimes) {
      step(`${label}: a Fastify server with fastify-mtls, -identity and -authz, and undici-mtls clients`)
      const run = await exec(binary, [join(app, 'out', 'smoke.js')], { cwd: app, timeout: hangLimit(45_000) })
      const lines = run.stdout.split('\n').filter(line => /^(not )?ok - /.test(line))
      for (const line of lines) {
        const [, failed, name, reason] = /^(not )?ok - (.*?\))(?:: (.*))?$/.exec(line) ?? [null, 'not ', line, '']
        report(name, failed === undefined ? [] : [reason || line])
      }
      if (run.code !== 0 && !lines.some(line => line.startsWith('not ok'))) {
        report(`${label}: the server and the clients`, [run.timedOut ? `killed after ${hangLimit(45)} s` : `exited ${run.code}: ${tail(run.stderr || run.stdout)}`])
      } else if (lines.length === 0) {
        report(`${label}: the server and the clients`, ['printed no results'])
      }
    }
  } finally {
    if (process.env.MTLS_CONSUMER_KEEP === '1') console.log(`# kept ${work}`)
    else await rm(work, { recursive: true, force: true })
  }
}

try {
  await main()
} catch (err) {
  console.log(`# stopped: ${err.message}`)
  if (results.failed === 0) report('the consumer test ran to its end', [err.stack ?? String(err)])
}
console.log(`consumer test: ${results.passed} passed, ${results.failed} failed${results.skipped > 0 ? `, ${results.skipped} skipped` : ''} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
process.exitCode = results.failed === 0 && results.passed > 0 ? 0 : 1
