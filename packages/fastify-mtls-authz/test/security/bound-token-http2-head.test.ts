// Attacks on boundToken from the outside: a replayed token over HTTP/2, on the HEAD route Fastify adds, on a route
// registered before the plugin, with the plugins registered without await. The check must hold on each.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { thumbprintS256 } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { Agent, request } from 'undici'
import { fastifyMtlsAuthz } from '../../src/index.js'

const pki = await createTestPki()
const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/*'], roles: ['payments:read'] }] }
const bound = { config: { mtls: { roles: ['payments:read' as const], boundToken: true } } }
const thumbprintOf = (cert: IssuedCertificate): string => thumbprintS256(readPemBlocks(cert.certificate)[0]!.der)

interface Teardown { teardown: (fn: () => unknown) => void }

async function build (t: Teardown, http2: boolean): Promise<{ url: string, sign: (claims: object) => string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: { ...serverTls.httpsOptions, allowHTTP1: true }, ...(http2 ? { http2: true } : {}) } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  // A route before every plugin, then the plugins, none awaited, the verifier after authz.
  app.get('/before', bound, async () => 'read')
  app.register(fastifyMtls as unknown as FastifyPluginAsync<Record<string, unknown>>, { tls: serverTls })
  app.register(fastifyMtlsIdentity as FastifyPluginAsync)
  app.register(fastifyMtlsAuthz as unknown as FastifyPluginAsync<Record<string, unknown>>, { policy })
  app.register(fastifyJwt, { secret: 'a test secret that is long enough for HS256' })
  app.addHook('onRequest', async request => { if (request.headers.authorization !== undefined) await request.jwtVerify() })
  app.get('/after', bound, async () => 'read')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, sign: claims => app.jwt.sign(claims) }
}

function agentOf (t: Teardown, cert: IssuedCertificate, http2: boolean): Agent {
  const agent = new Agent({ connect: { ca: pki.ca, cert: cert.chain, key: cert.key, servername: 'localhost' }, allowH2: http2 })
  t.teardown(() => agent.close())
  return agent
}

for (const http2 of [false, true]) {
  t.test(`a replayed bound token is refused over HTTP/${http2 ? '2' : '1.1'}, on GET and HEAD, before and after the plugin`, async t => {
    const { url, sign } = await build(t, http2)
    const token = sign({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })
    const owner = agentOf(t, pki.orderService, http2)
    const thief = agentOf(t, pki.inventoryService, http2)
    for (const path of ['/before', '/after']) {
      for (const method of ['GET', 'HEAD'] as const) {
        const mine = await request(`${url}${path}`, { dispatcher: owner, method, headers: { authorization: `Bearer ${token}` } })
        await mine.body.dump()
        t.equal(mine.statusCode, 200, `${method} ${path}: the owner's own token passes`)
        const replayed = await request(`${url}${path}`, { dispatcher: thief, method, headers: { authorization: `Bearer ${token}` } })
        await replayed.body.dump()
        t.equal(replayed.statusCode, 401, `${method} ${path}: the replayed token is refused`)
        t.match(replayed.headers['www-authenticate'], /^Bearer error="invalid_token"/, `${method} ${path}: invalid_token`)
        const none = await request(`${url}${path}`, { dispatcher: thief, method })
        await none.body.dump()
        t.equal(none.statusCode, 401, `${method} ${path}: no token at all is refused`)
      }
    }
  })
}
