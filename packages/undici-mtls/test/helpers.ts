import type { TLSSocket } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from 'fastify-mtls'
import { startFastifyServer, type Teardown } from 'mtls-test-support'

/** A fastify-mtls server answering GET /whoami with the client certificate it saw on this connection. */
export async function startServer (t: Teardown, tls: ServerTlsOptions, fastifyOptions: Record<string, unknown> = {}, pluginOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string, hits: { count: number } }> {
  const serverTls = await loadServerTls(tls)
  const hits = { count: 0 }
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: false, ...pluginOptions })
    app.get('/whoami', async request => {
      hits.count++
      const socket = (request.raw as { stream?: { session?: { socket: TLSSocket } } }).stream?.session?.socket ?? request.raw.socket as TLSSocket
      const peer = socket.getPeerX509Certificate()
      return { san: peer?.subjectAltName ?? null, fingerprint256: peer?.fingerprint256 ?? null, resumed: socket.isSessionReused() }
    })
  })
  return { app, url, hits }
}

export { beforeExpiry, pastExpiry } from 'mtls-test-support'
