// The runtimes the tests run on, fetched from the npm registry once into a local cache (no global change): the
// official Node binaries (published as node-<platform>-<arch>) and undici 8. Pinned, so that a run is repeatable
// and names the same runtimes whatever `node` is first on PATH.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

// The Node majors users run: 22 and 24 (LTS), 26 (current), and 20 (past its end of life, still in `engines`).
const NODE_VERSIONS = Object.freeze({ 20: '20.20.2', 22: '22.23.5', 24: '24.22.3', 26: '26.12.1' })
const UNDICI_8 = Object.freeze({ name: 'undici', version: '8.13.1' })

/**
 * Where each test runs. Every package's tap suite on both LTS lines, with undici 7 (the workspace's) on one and
 * undici 8 on the other (the pinned 22 and 24 both ship OpenSSL 3.5; OpenSSL 3.0 is Node 20's); the consumer test
 * (packed packages, a real server and clients) also on the oldest and newest Node that `engines` admits. Coverage is measured (and each package's floors checked)
 * on the Node 24 run, where both runs used to meet them alike: once is enough, and it costs every test process.
 */
export const TAP_RUNTIMES = Object.freeze([{ major: 22, undici: null, coverage: false }, { major: 24, undici: UNDICI_8, coverage: true }])
export const CONSUMER_MAJORS = Object.freeze([20, 22, 24, 26])

/** The path of a Node binary of that major (20, 22, 24 or 26), fetched once into the cache. */
export async function nodeBinary (major) {
  const version = NODE_VERSIONS[major]
  if (version === undefined) throw new Error(`no pinned Node ${major}; known: ${Object.keys(NODE_VERSIONS).join(', ')}`)
  return join(await ensurePackage({ name: `node-${process.platform}-${process.arch}`, version }), 'bin', 'node')
}

/** What a Node binary says it is: `Node 22.23.5 (OpenSSL 3.0.17)`, read from the binary itself. */
export async function describeNode (binary) {
  const { stdout } = await run(binary, ['-p', 'process.versions.node + " " + process.versions.openssl'])
  const [node, openssl] = stdout.trim().split(' ')
  return `Node ${node} (OpenSSL ${openssl.replace(/\+.*$/, '')})`
}

const cache = process.env.MTLS_TOOLKIT_CACHE ?? join(homedir(), '.cache', 'mtls-toolkit')

/** The directory of a pinned npm package, extracted into the cache; fetched the first time only. */
export async function ensurePackage ({ name, version }) {
  const dir = join(cache, `${name}-${version}`)
  if (existsSync(join(dir, 'package.json'))) return dir
  await mkdir(cache, { recursive: true })
  const work = await mkdtemp(join(cache, 'fetch-'))
  try {
    const { stdout } = await run('npm', ['pack', `${name}@${version}`, '--pack-destination', work, '--silent'], { maxBuffer: 1 << 20 })
    await run('tar', ['xzf', join(work, stdout.trim().split('\n').pop()), '-C', work])
    await rm(dir, { recursive: true, force: true })
    await rename(join(work, 'package'), dir)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return dir
}

/**
 * How to run tap on one of TAP_RUNTIMES: its label, the environment (that Node first on PATH, Node's own type
 * stripping instead of a TypeScript compiler in every test process, undici 8 where asked) and tap's arguments
 * (test-hooks.mjs goes in after tap's own loaders, so it sees imports first).
 */
export async function tapRun ({ major, undici, coverage }) {
  const [node, undiciDir] = await Promise.all([nodeBinary(major), undici === null ? null : ensurePackage(undici)])
  const hooks = new URL('./test-hooks.mjs', import.meta.url).pathname
  // No NODE_COMPILE_CACHE: code V8 takes from it carries no coverage counters (class field initializers, functions
  // compiled before the cache was written), so the coverage run reported code the tests had run as never run; its
  // gain in CPU was about 3%, within the noise.
  const env = { ...process.env, PATH: `${join(node, '..')}:${process.env.PATH}`, TAP_TYPE_STRIP_ONLY: '1' }
  delete env.NODE_COMPILE_CACHE
  delete env.MTLS_TEST_UNDICI
  if (undiciDir !== null) env.MTLS_TEST_UNDICI = join(undiciDir, 'index.js')
  const label = `${await describeNode(node)}${undici === null ? '' : `, undici ${undici.version}`}`
  return { label, env, tapArgs: [`--node-arg=--import=${hooks}`, ...(coverage ? [] : ['--disable-coverage'])] }
}
