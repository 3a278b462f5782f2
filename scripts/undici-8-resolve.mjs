let url
export function initialize (data) { url = data.url }
export async function resolve (specifier, context, next) {
  return specifier === 'undici' ? { url, shortCircuit: true, format: 'commonjs' } : await next(specifier, context)
}
