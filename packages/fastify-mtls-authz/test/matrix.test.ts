import t from 'tap'
import { createTestPki } from 'mtls-pki'
import type { Agent } from 'undici'
import type { FastifyInstance } from 'fastify'
import { agentFor, call, startServer } from './helpers.js'

const pki = await createTestPki()
const partner = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://partner.org/production/order-service' })
const dnsOnly = await pki.intermediate.issue({ usage: 'client', dnsNames: ['legacy.example.com'] })
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const xfcc = `By=spiffe://mycompany.com/production/payment-service;Cert="${encodeURIComponent(pki.inventoryService.certificate)}"`

const policy = {
  acl: [
    { identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] },
    { identities: ['spiffe://mycompany.com/production/**'], roles: ['payments:read'] },
    { identities: ['dns:legacy.example.com'], roles: ['legacy'] }
  ],
  deny: ['spiffe://partner.org/**']
}

const routes = (app: FastifyInstance): void => {
  app.get('/health', { config: { mtls: { public: true } } }, async () => 'ok')
  app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
  app.get('/read', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'read')
  app.get('/allow', { config: { mtls: { allow: ['spiffe://mycompany.com/production/inventory-service', 'dns:legacy.example.com'] } } }, async () => 'allowed')
  app.get('/deny', { config: { mtls: { roles: ['payments:read'], deny: ['spiffe://mycompany.com/production/inventory-service'] } } }, async () => 'ok')
  app.get('/all', { config: { mtls: { allRoles: ['payments:charge', 'payments:read'] } } }, async () => 'ok')
  app.get('/undeclared', async () => 'ok')
}

type Who = 'order' | 'inventory' | 'partner' | 'dnsOnly' | 'forwarded' | 'none'
const W: Who[] = ['order', 'inventory', 'partner', 'dnsOnly', 'forwarded', 'none']
// route -> expected status per identity, in W's order
const denyDefault: Array<[string, string, number[]]> = [
  ['GET', '/health', [200, 200, 200, 200, 200, 200]],
  ['POST', '/charge', [200, 403, 403, 403, 403, 401]],
  ['GET', '/read', [200, 200, 403, 403, 200, 401]],
  ['GET', '/allow', [403, 200, 403, 200, 200, 401]],
  ['GET', '/deny', [200, 403, 403, 403, 403, 401]],
  ['GET', '/all', [200, 403, 403, 403, 403, 401]],
  ['GET', '/undeclared', [403, 403, 403, 403, 403, 401]]
]
const CODES: Record<number, string | null> = { 200: null, 401: 'FST_MTLS_AUTHZ_PEER_REQUIRED', 403: 'FST_MTLS_AUTHZ_FORBIDDEN' }

function agents (t: Parameters<typeof agentFor>[0]): Record<Who, { agent: Agent, headers: string[] }> {
  return {
    order: { agent: agentFor(t, pki, pki.orderService), headers: [] },
    inventory: { agent: agentFor(t, pki, pki.inventoryService), headers: [] },
    partner: { agent: agentFor(t, pki, partner), headers: [] },
    dnsOnly: { agent: agentFor(t, pki, dnsOnly), headers: [] },
    forwarded: { agent: agentFor(t, pki, proxy), headers: ['x-forwarded-client-cert', xfcc] },
    none: { agent: agentFor(t, pki), headers: [] }
  }
}

for (const defaultPolicy of ['deny', 'allow'] as const) {
  t.test(`the identity x route matrix over real TLS, defaultPolicy ${defaultPolicy}`, async t => {
    const { url } = await startServer(t, pki, { policy: { ...policy, defaultPolicy } }, routes)
    const clients = agents(t)
    for (const [method, path, expected] of denyDefault) {
      // Under allow, an undeclared route is open, except to identities the policy denies (partner.org).
      const statuses = defaultPolicy === 'allow' && path === '/undeclared' ? W.map(who => who === 'partner' ? 403 : 200) : expected
      for (const [index, who] of W.entries()) {
        const { agent, headers } = clients[who]
        const result = await call(url, agent, method, path, headers)
        const status = statuses[index] as number
        t.equal(result.status, status, `${who} ${method} ${path} -> ${status}`)
        t.equal(result.code, CODES[status], `${who} ${method} ${path}: code`)
      }
    }
  })
}

t.test('the 403 names the identity, the 401 the reason, and nothing secret', async t => {
  const { url } = await startServer(t, pki, { policy }, routes)
  const forbidden = await call(url, agentFor(t, pki, pki.inventoryService), 'POST', '/charge')
  t.equal(forbidden.message, 'spiffe://mycompany.com/production/inventory-service may not POST /charge')
  const anonymous = await call(url, agentFor(t, pki), 'POST', '/charge')
  t.equal(anonymous.message, 'A verified client certificate is required (ERR_MTLS_NO_PEER_CERTIFICATE)')
  const expired = await call(url, agentFor(t, pki, pki.expired), 'POST', '/charge')
  t.equal(expired.message, 'A verified client certificate is required (CERT_HAS_EXPIRED)')
})
