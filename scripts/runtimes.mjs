// The other runtimes the tests run on, fetched from the npm registry once into a local cache (no global
// change): Node 24 (the official binary, published as node-<platform>-<arch>) and undici 8, which needs it.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

// Pinned, so that a run is repeatable; the Node majors users run.
const NODE_VERSIONS = Object.freeze({ 22: '22.23.5', 24: '24.22.3', 26: '26.12.1' })

export const RUNTIMES = Object.freeze({
  node24: { name: `node-${process.platform}-${process.arch}`, version: NODE_VERSIONS[24] },
  undici8: { name: 'undici', version: '8.13.1' }
})

/** The path of a Node binary of that major (22, 24 or 26), fetched once into the cache. */
export async function nodeBinary (major) {
  const version = NODE_VERSIONS[major]
  if (version === undefined) throw new Error(`no pinned Node ${major}; known: ${Object.keys(NODE_VERSIONS).join(', ')}`)
  return join(await ensurePackage({ name: `node-${process.platform}-${process.arch}`, version }), 'bin', 'node')
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
 * How to run tap on Node 24 with undici 8 in place of the workspace's undici 7: the environment (Node 24
 * first on PATH) and tap's arguments (the resolve hook goes in after tap's own loaders, so it sees imports first).
 */
export async function node24Run () {
  const [node, undici] = await Promise.all([ensurePackage(RUNTIMES.node24), ensurePackage(RUNTIMES.undici8)])
  const hook = new URL('./undici-8-hook.mjs', import.meta.url).pathname
  return {
    env: { ...process.env, PATH: `${join(node, 'bin')}:${process.env.PATH}`, MTLS_TEST_UNDICI: join(undici, 'index.js') },
    tapArgs: [`--node-arg=--import=${hook}`]
  }
}
