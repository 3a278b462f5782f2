import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from 'fastify-mtls'

export interface Teardown { teardown: (fn: () => unknown) => void }

/** A fastify-mtls server answering GET /whoami with the client certificate it saw on this connection. */
export async function startServer (t: Teardown, tls: ServerTlsOptions, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string, hits: { count: number } }> {
  const serverTls = await loadServerTls(tls)
  const app = Fastify({ https: serverTls.httpsOptions, ...fastifyOptions } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  const hits = { count: 0 }
  app.get('/whoami', async request => {
    hits.count++
    const socket = (request.raw as { stream?: { session?: { socket: TLSSocket } } }).stream?.session?.socket ?? request.raw.socket as TLSSocket
    const peer = socket.getPeerX509Certificate()
    return { san: peer?.subjectAltName ?? null, fingerprint256: peer?.fingerprint256 ?? null, resumed: socket.isSessionReused() }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, hits }
}
