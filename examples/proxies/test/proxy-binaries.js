// Which proxies are installed here, where, and which version: found on PATH or in the sbin directories (Debian puts
// nginx and haproxy in /usr/sbin, which a non-root PATH often lacks), and run once to be sure it works.
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

export const PROXIES = Object.freeze({
  nginx: { binary: 'nginx', versionArgs: ['-v'], version: /nginx\/(\S+)/, install: 'apt-get install nginx' },
  haproxy: { binary: 'haproxy', versionArgs: ['-v'], version: /HAProxy version (\S+)/, install: 'apt-get install haproxy' },
  caddy: { binary: 'caddy', versionArgs: ['version'], version: /^v?(\d+\.\d+\.\d+\S*)/m, install: 'apt-get install caddy' }
})

const SEARCHED = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(dir => dir !== '')

/**
 * `{ name, path, version }` for an installed proxy, or `{ name, skip }` saying why it cannot run here. The
 * environment variable PROXIES_E2E_SKIP (`nginx,caddy`) skips proxies on purpose.
 */
export function findProxy (name) {
  const { binary, versionArgs, version, install } = PROXIES[name]
  if ((process.env.PROXIES_E2E_SKIP ?? '').split(',').map(entry => entry.trim()).includes(name)) {
    return { name, skip: `${name}: left out by PROXIES_E2E_SKIP` }
  }
  const path = SEARCHED.map(dir => join(dir, binary)).find(file => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (path === undefined) return { name, skip: `${name}: not installed (${install})` }
  // nginx prints its version on stderr: both streams are read.
  const run = spawnSync(path, versionArgs, { encoding: 'utf8', timeout: 5000 })
  if (run.error !== undefined || run.status !== 0) return { name, skip: `${name}: ${path} does not run (${run.error?.message ?? run.stderr.trim().split('\n')[0]})` }
  const found = version.exec(run.stdout + run.stderr)?.[1] ?? 'unknown version'
  return { name, path, version: found }
}

/** The line printed for a proxy at the start of a run. */
export const describeProxy = found => found.skip === undefined
  ? `${found.name}: runs (${found.name} ${found.version}, ${found.path})`
  : `${found.name}: skipped, ${found.skip.slice(found.name.length + 2)}`
