import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import type { TestPki } from 'mtls-pki'
import { Agent, request } from 'undici'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../src/index.js'

export interface Teardown { teardown: (fn: () => unknown) => void }

/** A Fastify mTLS server with the identity plugin; GET /who answers with what the request knows of its peer. */
export async function startServer (t: Teardown, pki: TestPki, identity: FastifyMtlsIdentityOptions = {}, mode: MtlsMode = 'optional', fastifyOptions: Record<string, unknown> = {}, trust: { ca?: string | string[], crl?: readonly string[] } = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: trust.ca ?? pki.ca, ...(trust.crl === undefined ? {} : { crl: [...trust.crl] }), mode })
  const app = Fastify({ https: serverTls.httpsOptions, ...fastifyOptions } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  await app.register(fastifyMtls, { tls: serverTls })
  await app.register(fastifyMtlsIdentity, identity)
  app.get('/who', async request => ({
    id: request.peerIdentity?.id ?? null,
    source: request.peerIdentity?.source ?? null,
    error: request.peerCertificateError
  }))
  app.get('/anonymous', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

/** An undici agent presenting a certificate of the test set (or none). */
export function agentFor (t: Teardown, pki: TestPki, cert?: { chain: string, key: string }, extra: Record<string, unknown> = {}): Agent {
  const agent = new Agent({ connect: { ca: pki.ca, servername: 'localhost', ...(cert === undefined ? {} : { cert: cert.chain, key: cert.key }) }, ...extra })
  t.teardown(() => agent.close())
  return agent
}

export interface Who { id: string | null, source: string | null, error: string | null }

/** GET /who through an agent, with extra headers (a flat list, so names may repeat). */
export async function who (url: string, dispatcher: Agent, headers: string[] = []): Promise<{ status: number, body: Who }> {
  const response = await request(`${url}/who`, { dispatcher, headers })
  return { status: response.statusCode, body: await response.body.json() as Who }
}
