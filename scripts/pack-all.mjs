// The packages as tarballs, for an app outside the workspace before they are on npm. Builds once (`pnpm build`),
// packs every public package of packages/ into one folder (default ./packed, or the first argument) with
// `pnpm pack`, which turns `workspace:` ranges into versions, and prints the one `npm install` line that installs
// them all: a package's siblings (mtls-core under every other one) are only in those tarballs, not on npm yet.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, posix, relative, resolve } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const packagesDir = join(root, 'packages')
const destination = resolve(process.argv[2] ?? 'packed')

const packages = readdirSync(packagesDir)
  .filter(name => existsSync(join(packagesDir, name, 'package.json')))
  .sort()
  .map(name => ({ dir: join(packagesDir, name), manifest: JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) }))
const published = packages.filter(({ manifest }) => manifest.private !== true)
for (const { manifest } of packages) {
  if (manifest.private === true) console.log(`skipped ${manifest.name} (private)`)
}

execFileSync('pnpm', ['build'], { cwd: root, stdio: 'inherit' })

mkdirSync(destination, { recursive: true })
// Tarballs of earlier versions would be installed too by `npm install ./packed/*.tgz`; other files are left alone.
const ours = new Set(published.map(({ manifest }) => manifest.name))
for (const file of readdirSync(destination)) {
  const name = /^(.+)-\d+\.\d+\.\d+.*\.tgz$/.exec(file)?.[1]
  if (name !== undefined && ours.has(name)) rmSync(join(destination, file))
}

function exportTargets (exports) {
  if (typeof exports === 'string') return [exports]
  if (exports === null || typeof exports !== 'object') return []
  return Object.values(exports).flatMap(exportTargets)
}

const tarballs = []
const problems = []
for (const { dir, manifest } of published) {
  // Built above: the package's prepack would build again, once per package.
  const output = execFileSync('pnpm', ['pack', '--pack-destination', destination, '--json', '--config.ignore-scripts=true'],
    { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const { filename, files } = JSON.parse(output)
  const packed = new Set(files.map(file => file.path))
  // tsc --build trusts its .tsbuildinfo: a dist/ deleted by hand is not rebuilt, and the tarball would lack it.
  const entryPoints = [manifest.main, manifest.types, ...Object.values(manifest.bin ?? {}), ...exportTargets(manifest.exports)]
  const missing = [...new Set(entryPoints)].filter(target => typeof target === 'string' && !packed.has(posix.normalize(target)))
  if (missing.length > 0) problems.push(`${manifest.name}: ${missing.join(', ')} not in the tarball; run pnpm clean && pnpm pack:all`)
  tarballs.push(filename)
  console.log(`${manifest.name}@${manifest.version}: ${relative(process.cwd(), filename)}`)
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem)
  process.exit(1)
}

const quote = text => /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`
// The peers the packages are used with; npm picks the undici the app's Node runs (7 on Node 20, 8 from 22.19).
console.log(`\nInstall them together in your app (from any folder):\n\nnpm install ${tarballs.map(quote).join(' ')} fastify@5 undici\n`)
