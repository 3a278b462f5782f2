import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { loadOpenTelemetry, openTelemetryFor } from '../src/otel.js'

t.test('the API is loaded once; false asks for nothing', async t => {
  const warnings: string[] = []
  const api = await openTelemetryFor(undefined, message => { warnings.push(message) }, 'x')
  t.ok(api !== null && typeof api.trace.getActiveSpan === 'function')
  t.equal(await loadOpenTelemetry(), api, 'one import for every caller')
  t.equal(await openTelemetryFor(false, message => { warnings.push(message) }, 'x'), null)
  t.same(warnings, [])
})

t.test('without @opentelemetry/api: nothing, and a warning only for openTelemetry: true', async t => {
  // A process where the package cannot be resolved, as for a user who did not install it.
  const hideApi = `data:text/javascript,${encodeURIComponent(`import { registerHooks } from 'node:module'
registerHooks({ resolve (specifier, context, next) {
  if (specifier === '@opentelemetry/api') throw Object.assign(new Error('not installed'), { code: 'ERR_MODULE_NOT_FOUND' })
  return next(specifier, context)
} })`)}`
  const script = `const { openTelemetryFor } = await import(${JSON.stringify(fileURLToPath(new URL('../src/otel.ts', import.meta.url)))})
const warnings = []
const quiet = await openTelemetryFor(undefined, m => warnings.push(m), 'fastify-mtls')
const asked = await openTelemetryFor(true, m => warnings.push(m), 'fastify-mtls')
console.log(JSON.stringify({ quiet, asked, warnings }))`
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv.filter(arg => arg.startsWith('--import=/')), `--import=${hideApi}`, '--input-type=module', '-e', script])
  const result = JSON.parse(stdout) as { quiet: null, asked: null, warnings: string[] }
  t.equal(result.quiet, null)
  t.equal(result.asked, null)
  t.equal(result.warnings.length, 1, 'one warning, for the explicit true')
  t.match(result.warnings[0], /openTelemetry is true, but @opentelemetry\/api cannot be loaded: install it beside fastify-mtls/)
})
