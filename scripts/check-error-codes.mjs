// Keeps the error code tables true: every code a package defines (a `'FST_MTLS_…'` or `'ERR_MTLS_…'` literal in
// its src/errors.ts) is in its own README and in the root README's table, and the root table lists no code that
// no package defines. Run by `pnpm lint`.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const CODE = /'((?:FST|ERR)_MTLS_[A-Z0-9_]+)'/g
const rootReadme = readFileSync(join(root, 'README.md'), 'utf8')
const section = rootReadme.split('<!-- error-codes -->')[1]?.split('<!-- /error-codes -->')[0]
const problems = []
if (section === undefined) problems.push('README.md: no <!-- error-codes --> … <!-- /error-codes --> table')
// The root table's rows: | `CODE` | package | meaning |
const rootRows = new Map([...(section ?? '').matchAll(/^\| `((?:FST|ERR)_MTLS_[A-Z0-9_]+)` \| ([a-z-]+) \|/gm)].map(m => [m[1], m[2]]))
const defined = new Map()

// mtls-core first: a plugin that passes one of its codes on (fastify-mtls-identity's verdicts) does not own it.
for (const name of readdirSync(join(root, 'packages')).sort((a, b) => Number(b === 'mtls-core') - Number(a === 'mtls-core'))) {
  let source
  try {
    source = readFileSync(join(root, 'packages', name, 'src', 'errors.ts'), 'utf8')
  } catch {
    continue
  }
  const readme = readFileSync(join(root, 'packages', name, 'README.md'), 'utf8')
  for (const [, code] of source.matchAll(CODE)) {
    if (defined.has(code)) continue
    defined.set(code, name)
    if (!readme.includes(`\`${code}\``)) problems.push(`packages/${name}/README.md does not document ${code}`)
    if (!rootRows.has(code)) problems.push(`README.md's error code table has no row for ${code} (${name})`)
    else if (rootRows.get(code) !== name) problems.push(`README.md's error code table gives ${code} to ${rootRows.get(code)}, it is ${name}'s`)
  }
}
for (const code of rootRows.keys()) {
  if (!defined.has(code)) problems.push(`README.md's error code table lists ${code}, which no package defines`)
}

if (problems.length > 0) {
  console.error(`error codes: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(`error codes: ${defined.size} codes, each in its package README and in the root README`)
