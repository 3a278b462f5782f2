import * as nodeModule from 'node:module'

interface ResolveResult { url: string }
type Resolve = (specifier: string, context: object, next: (specifier: string, context: object) => ResolveResult) => ResolveResult
// module.registerHooks (Node 22.15 and later, where the tap runs are) is not in @types/node 20's typings.
const registerHooks = (nodeModule as unknown as { registerHooks?: (hooks: { resolve: Resolve }) => unknown }).registerHooks

/**
 * The third-party modules imported from now on, as `package/path` (from node_modules, or the undici 8 copy a test run
 * may put in undici's place, see scripts/runtimes.mjs): the list fills as imports resolve. For tests of what an
 * entry point loads.
 */
export function recordThirdPartyImports (): string[] {
  if (registerHooks === undefined) throw new Error(`recordThirdPartyImports needs module.registerHooks (Node 22.15 or later); this is ${process.version}`)
  const loaded: string[] = []
  registerHooks({
    resolve (specifier, context, next) {
      const resolved = next(specifier, context)
      const { url } = resolved
      if (url.includes('/node_modules/')) loaded.push(url.replace(/^.*\/node_modules\//, ''))
      else if (/\/undici-\d[^/]*\//.test(url)) loaded.push(`undici/${url.replace(/^.*\/undici-\d[^/]*\//, '')}`)
      return resolved
    }
  })
  return loaded
}
