import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Teardown } from './teardown.js'

export interface FastifyTestServerOptions {
  /** Fastify's `https` option: a package's `serverTls.httpsOptions`. */
  https: object
  /** Other Fastify options (`logger`, `http2`, ...), spread after `https`. */
  fastify?: Record<string, unknown>
}

export interface FastifyTestServer {
  app: FastifyInstance
  port: number
  /** `https://127.0.0.1:PORT` */
  url: string
}

/**
 * A Fastify HTTPS server on 127.0.0.1 and a free port, closed at teardown. `setup` registers the plugins and
 * routes under test before it listens, so a plugin that refuses its options rejects here.
 */
export async function startFastifyServer (t: Teardown, options: FastifyTestServerOptions, setup: (app: FastifyInstance) => Promise<void> | void): Promise<FastifyTestServer> {
  const app = Fastify({ https: options.https, ...options.fastify } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  await setup(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  return { app, port, url: `https://127.0.0.1:${port}` }
}
