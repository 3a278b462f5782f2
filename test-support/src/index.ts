// What the packages' tests share. Each package's test/helpers.ts builds its own startServer (its plugins, its routes) on these.
export { capturedLogger, type CapturedLogger } from './captured-logger.js'
export { agentFor } from './client-agent.js'
export { startFastifyServer, type FastifyTestServer, type FastifyTestServerOptions } from './fastify-server.js'
export { PemFeed, type PemFeedMaterial } from './pem-feed.js'
export { stallingRelay } from './stalling-relay.js'
export { tempDir } from './temp-dir.js'
export type { Teardown } from './teardown.js'
export { until } from './until.js'
