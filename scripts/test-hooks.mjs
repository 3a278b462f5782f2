// Loaded with --import (tap --node-arg) on every test run of test-all.mjs, on Node 22 and later. Two resolve rules:
// - a relative `./x.js` that does not exist, imported by TypeScript, is `./x.ts`: the sources import each other
//   by the name tsc emits, and Node strips the types itself (TAP_TYPE_STRIP_ONLY=1), so no TypeScript compiler
//   is loaded into each test process;
// - with MTLS_TEST_UNDICI set, every `undici` (the tests' and undici-mtls's own) is that copy (undici 8 from the
//   cache, see runtimes.mjs), so the same tests prove both majors.
import { registerHooks } from 'node:module'
import { pathToFileURL } from 'node:url'

const undici = process.env.MTLS_TEST_UNDICI ? pathToFileURL(process.env.MTLS_TEST_UNDICI).href : undefined

registerHooks({
  resolve (specifier, context, next) {
    if (specifier === 'undici' && undici !== undefined) return { url: undici, format: 'commonjs', shortCircuit: true }
    try {
      return next(specifier, context)
    } catch (err) {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/^\.\.?\/.*\.js$/.test(specifier) || !context.parentURL?.endsWith('.ts')) throw err
      return next(`${specifier.slice(0, -3)}.ts`, context)
    }
  }
})
