import neostandard from 'neostandard'

// neostandard: the Fastify ecosystem's style (standard, flat config, TypeScript aware).
export default [
  ...neostandard({ ts: true, ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**', '**/.tap/**', 'bench/results/**'] })
]
