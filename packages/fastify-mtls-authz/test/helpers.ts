import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import type { TestPki } from 'mtls-pki'
import { Agent, request } from 'undici'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../src/index.js'

export interface Teardown { teardown: (fn: () => unknown) => void }

/** An optional-mode mTLS server with identity (trusting `proxySpiffe` to forward XFCC) and authz. */
export async function startServer (t: Teardown, pki: TestPki, authz: FastifyMtlsAuthzOptions, routes: (app: FastifyInstance) => void, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions, ...fastifyOptions } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  await app.register(fastifyMtls, { tls: serverTls })
  await app.register(fastifyMtlsIdentity, { trustedProxies: { identities: ['spiffe://mycompany.com/infra/**'] }, forwarded: 'envoy' })
  await app.register(fastifyMtlsAuthz, authz)
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

export function agentFor (t: Teardown, pki: TestPki, cert?: { chain: string, key: string }): Agent {
  const agent = new Agent({ connect: { ca: pki.ca, servername: 'localhost', ...(cert === undefined ? {} : { cert: cert.chain, key: cert.key }) } })
  t.teardown(() => agent.close())
  return agent
}

export async function call (url: string, agent: Agent, method: string, path: string, headers: string[] = [], body?: string): Promise<{ status: number, code: string | null, message: string | null }> {
  const response = await request(`${url}${path}`, { dispatcher: agent, method: method as 'GET', headers, ...(body === undefined ? {} : { body }) })
  const text = await response.body.text()
  const json = text.startsWith('{') ? JSON.parse(text) as { code?: string, message?: string } : {}
  return { status: response.statusCode, code: json.code ?? null, message: json.message ?? null }
}
