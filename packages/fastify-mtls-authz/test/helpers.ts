import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import type { TestPki } from 'mtls-pki'
import { startFastifyServer, type Teardown } from 'mtls-test-support'
import { request, type Agent } from 'undici'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../src/index.js'

export { agentFor } from 'mtls-test-support'

/** An optional-mode mTLS server with identity (trusting spiffe://mycompany.com/infra/** to forward XFCC) and authz. */
export async function startServer (t: Teardown, pki: TestPki, authz: FastifyMtlsAuthzOptions, routes: (app: FastifyInstance) => void, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, { trustedProxies: { identities: ['spiffe://mycompany.com/infra/**'] }, forwarded: 'envoy' })
    await app.register(fastifyMtlsAuthz, authz)
    routes(app)
  })
  return { app, url }
}

export async function call (url: string, agent: Agent, method: string, path: string, headers: string[] = [], body?: string): Promise<{ status: number, code: string | null, message: string | null }> {
  const response = await request(`${url}${path}`, { dispatcher: agent, method: method as 'GET', headers, ...(body === undefined ? {} : { body }) })
  const text = await response.body.text()
  const json = text.startsWith('{') ? JSON.parse(text) as { code?: string, message?: string } : {}
  return { status: response.statusCode, code: json.code ?? null, message: json.message ?? null }
}
