// The policy's deny list was skipped under defaultPolicy 'allow', a misspelt role refused forever without a
// word, and a misspelt option (`polcy`) registered an empty policy.
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki } from 'mtls-pki'
import { fastifyMtlsAuthz } from '../../src/index.js'
import { agentFor, call, startServer } from '../helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const xfcc = (pem: string): string[] => ['x-forwarded-client-cert', `By=spiffe://mycompany.com/production/payment-service;Cert="${encodeURIComponent(pem)}"`]

t.test('the policy\'s deny list applies under defaultPolicy allow, to direct and forwarded peers; public routes stay open', async t => {
  const policy = { defaultPolicy: 'allow' as const, deny: ['spiffe://mycompany.com/production/inventory-service'], acl: [{ identities: ['spiffe://mycompany.com/production/**'], roles: ['read'] }] }
  const { url } = await startServer(t, pki, { policy }, app => {
    app.get('/undeclared', async () => 'ok')
    app.get('/read', { config: { mtls: { roles: ['read'] } } }, async () => 'ok')
    app.get('/health', { config: { mtls: { public: true } } }, async () => 'ok')
  })
  const inventory = agentFor(t, pki, pki.inventoryService)
  const denied = await call(url, inventory, 'GET', '/undeclared')
  t.same({ status: denied.status, code: denied.code }, { status: 403, code: 'FST_MTLS_AUTHZ_FORBIDDEN' }, 'a denied identity on an undeclared route')
  t.equal((await call(url, agentFor(t, pki, proxy), 'GET', '/undeclared', xfcc(pki.inventoryService.certificate))).status, 403, 'the same identity forwarded by a trusted proxy')
  t.equal((await call(url, inventory, 'GET', '/read')).status, 403, 'a denied identity holding the role')
  t.equal((await call(url, inventory, 'GET', '/health')).status, 200, 'public routes are open to anyone')
  t.equal((await call(url, agentFor(t, pki, pki.orderService), 'GET', '/undeclared')).status, 200, 'others pass the undeclared route')
  t.equal((await call(url, agentFor(t, pki), 'GET', '/undeclared')).status, 200, 'without a certificate too: allow means open')
  t.equal((await call(url, agentFor(t, pki), 'GET', '/read')).status, 401)
})

t.test('roles that routes require but no ACL entry grants are warned about at ready(), one line per role', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }] }
  const { app } = await startServer(t, pki, { policy }, app => {
    app.post('/charge', { config: { mtls: { roles: ['payments:chrage'] } } }, async () => 'ok')
    app.post('/refund', { config: { mtls: { allRoles: ['payments:chrage', 'payments:charge'] } } }, async () => 'ok')
    app.get('/hooked', { onRequest: app.mtlsAuthorize({ roles: ['audit:read'] }) }, async () => 'ok')
  }, { logger })
  const warnings = (): string[] => lines.filter(line => line.level === 40 && typeof line.role === 'string').map(line => line.role as string)
  t.same(warnings().sort(), ['audit:read', 'payments:chrage'], 'each ungranted role once; granted ones not at all')
  t.match(lines.find(line => line.role === 'payments:chrage'), { msg: /role "payments:chrage" is required by a route but no ACL entry grants it/ })

  app.mtlsAuthz.setPolicy({ acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:chrage', 'audit:read'] }] })
  t.same(warnings().sort(), ['audit:read', 'payments:charge', 'payments:chrage'], 'a new policy that drops a grant is warned about too')
})

t.test('a misspelt option, policy key, ACL entry key or requirement is refused with the closest valid name', async t => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ polcy: { acl: [] } }, /fastify-mtls-authz: unknown option "polcy" \(did you mean "policy"\?\)/],
    [{ policy: { defaultPolcy: 'deny' } }, /policy: unknown option "defaultPolcy" \(did you mean "defaultPolicy"\?\)/],
    [{ policy: { acl: [{ identities: ['spiffe://mycompany.com/a'], roles: ['a'], role: ['b'] }] } }, /acl\[0\]: unknown option "role"/],
    [{ policy: { acl: [{ identites: ['spiffe://mycompany.com/a'], roles: ['a'] }] } }, /acl\[0\]: unknown option "identites" \(did you mean "identities"\?\)/],
    [{ hooks: 'onRequest' }, /did you mean "hook"/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    app.register(fastifyMtlsIdentity)
    app.register(fastifyMtlsAuthz, options)
    await t.rejects(async () => await app.ready(), { message }, JSON.stringify(options))
  }
  const app = Fastify()
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz)
  t.throws(() => app.mtlsAuthorize({ rolse: ['a'] } as never), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /config.mtls: unknown option "rolse" \(did you mean "roles"\?\)/ })
  await app.close()
})
