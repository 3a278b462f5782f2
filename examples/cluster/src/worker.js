// One worker: a Fastify app with fastify-mtls on the shared port, its material and session ticket keys from files
// every worker reads (each watches them and reloads on its own). Answers the primary's 'status' question over IPC.
import cluster from 'node:cluster'
import { join } from 'node:path'
import Fastify from 'fastify'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'

/** Starts this process's app on `port` (0: the port the primary chose for every worker). */
export async function startWorker ({ dir, port = 0, host = '127.0.0.1' }) {
  const tls = await loadServerTls({
    certFile: join(dir, 'server-chain.pem'),
    keyFile: join(dir, 'server-key.pem'),
    caFile: join(dir, 'ca.pem'),
    // One base secret for every worker (and every replica): a session one worker made resumes on another.
    ticketKeysFile: join(dir, 'ticket-keys')
  })
  const app = Fastify({ https: tls.httpsOptions, logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
  await app.register(fastifyMtls, { tls, watch: { debounceMs: 50 } })
  const worker = cluster.worker?.id ?? 0
  app.get('/whoami', async request => {
    const record = app.mtls.connection(request.raw.socket)
    return { worker, resumed: record?.resumed ?? false, subject: request.raw.socket.getPeerCertificate().subject?.CN ?? null }
  })
  await app.listen({ port, host })
  process.on('message', message => {
    if (message?.type !== 'status') return
    const status = app.mtls.status()
    process.send({
      type: 'status',
      id: message.id,
      worker,
      pid: process.pid,
      fingerprint256: status.certificate.fingerprint256,
      notAfter: status.certificate.notAfter,
      loadedAt: status.loadedAt,
      lastReload: status.lastReload,
      stats: app.mtls.stats()
    })
  })
  return app
}
