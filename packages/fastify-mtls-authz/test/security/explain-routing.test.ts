import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { toPeerIdentity } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { agentFor, call, startServer } from '../helpers.js'

const pki = await createTestPki()
const order = toPeerIdentity(readPemBlocks(pki.orderService.certificate)[0]!.der)
// Undeclared routes allowed, so that the app's 404 handler answers 404 and shows where the app routed nothing.
const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:read'] }], defaultPolicy: 'allow' as const }

// explain() read URLs with a router of default options while the app routed them with its own: with
// ignoreTrailingSlash or a case-insensitive router it named no route (or another) for a URL the app served.
// Each URL is asked of explain() and of the app, over TLS, and the two must agree.
const URLS = ['/api/payments/42', '/api/payments/42/', '/API/Payments/42', '/api//payments/42', '/api/payments/42;v=1', '/nowhere']
const APPS: Array<[string, Record<string, unknown>]> = [
  ['default router options', {}],
  ['routerOptions: trailing slash, case, duplicate slashes, semicolons', { routerOptions: { ignoreTrailingSlash: true, caseSensitive: false, ignoreDuplicateSlashes: true, useSemicolonDelimiter: true } }]
]

for (const [name, fastifyOptions] of APPS) {
  t.test(`explain() routes a URL as the app does: ${name}`, async t => {
    const { app, url } = await startServer(t, pki, { policy }, app => {
      app.get('/api/payments/:id', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'ok')
    }, fastifyOptions)
    const agent = agentFor(t, pki, pki.orderService)
    for (const path of URLS) {
      const served = (await call(url, agent, 'GET', path)).status
      const explained = app.mtlsAuthz.explain(order, 'GET', path)
      if (served === 404) t.equal(explained, null, `${path}: the app answers 404, explain() names no route`)
      else t.match(explained, { status: served, route: '/api/payments/:id' }, `${path}: the app answers ${served}, explain() says so`)
    }
  })
}
