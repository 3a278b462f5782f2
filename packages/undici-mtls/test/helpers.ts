import type { TLSSocket } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from 'fastify-mtls'
import { hangLimit, startFastifyServer, until, type Teardown } from 'mtls-test-support'

/** A fastify-mtls server answering GET /whoami with the client certificate it saw on this connection. */
export async function startServer (t: Teardown, tls: ServerTlsOptions, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string, hits: { count: number } }> {
  const serverTls = await loadServerTls(tls)
  const hits = { count: 0 }
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: false })
    app.get('/whoami', async request => {
      hits.count++
      const socket = (request.raw as { stream?: { session?: { socket: TLSSocket } } }).stream?.session?.socket ?? request.raw.socket as TLSSocket
      const peer = socket.getPeerX509Certificate()
      return { san: peer?.subjectAltName ?? null, fingerprint256: peer?.fingerprint256 ?? null, resumed: socket.isSessionReused() }
    })
  })
  return { app, url, hits }
}

/**
 * For expiry tests: runs `whileValid` with a notAfter about `windowMs` ahead, on a whole second as certificates
 * keep it, for material that must still be valid when the phase ends. A phase that outran its notAfter (a busy
 * machine) runs again with twice the window: no speed is assumed. Resolves with the notAfter and result of the
 * phase that ended in time; an error thrown before its notAfter is a failure.
 */
export async function beforeExpiry<T> (whileValid: (notAfter: Date) => Promise<T>, windowMs = 1000): Promise<{ notAfter: Date, result: T }> {
  for (let window = windowMs; window <= hangLimit(60_000); window *= 2) {
    const notAfter = new Date(Math.ceil((Date.now() + window) / 1000) * 1000)
    let result: T
    try {
      result = await whileValid(notAfter)
    } catch (err) {
      if (Date.now() < notAfter.getTime()) throw err
      continue
    }
    if (Date.now() < notAfter.getTime()) return { notAfter, result }
  }
  throw new Error('every phase outran its certificate\'s validity')
}

/** Resolves once `notAfter` has passed for OpenSSL as well, which compares whole seconds. */
export async function pastExpiry (notAfter: Date): Promise<void> {
  const expired = notAfter.getTime() + 1100
  await until(() => Date.now() > expired, `the clock to pass ${notAfter.toISOString()}`, expired - Date.now() + 30_000)
}
