import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { request } from 'undici'
import { ServerUnauthorizedError, createMtlsAgent, type ServerAuthorizer } from '../../src/index.js'
import { startServer } from '../helpers.js'

// The attack: a server() authorizer that forgets to return (or returns something truthy, or a Promise)
// approved every server of the CA, because only `false` refused. Only exactly `true` approves now.

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const payment = 'spiffe://mycompany.com/production/payment-service'

t.test('a server() function that forgets to return refuses the server', async t => {
  const { url, hits } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const seen: string[] = []
  // The bug as JavaScript users write it: meant to allow the ledger service only, and never returns.
  const forgetful = ((identity: { id: string }) => {
    seen.push(identity.id)
    // return identity.id === 'spiffe://mycompany.com/production/ledger-service'
  }) as unknown as ServerAuthorizer
  const agent = await createMtlsAgent({ ...client, server: forgetful })
  t.teardown(() => agent.close())
  const error = await request(`${url}/whoami`, { dispatcher: agent }).then(() => null, (err: unknown) => err)
  t.ok(error instanceof ServerUnauthorizedError)
  t.match(error, { code: 'ERR_MTLS_SERVER_UNAUTHORIZED', actual: payment, message: /server\(\) returned undefined; only true approves a server/ })
  t.same(seen, [payment], 'the function was asked, with the server it saw')
  t.equal(hits.count, 0, 'no request reached the server')
})

t.test('a truthy value that is not true, a Promise, or a throw refuse too; true approves', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const refused: Array<[string, unknown, RegExp]> = [
    ['a truthy string', () => 'yes', /server\(\) returned "yes"; only true approves/],
    ['a number', () => 1, /server\(\) returned 1;/],
    ['an object', () => ({ ok: true }), /server\(\) returned an object;/],
    ['an async function', async () => true, /server\(\) returned a Promise \(an async function\?\);/],
    ['a throw', () => { throw new Error('policy store unreachable') }, /server\(\) threw: policy store unreachable/],
    ['false', () => false, /expected a server accepted by the server\(\) function, got "spiffe:\/\/mycompany.com\/production\/payment-service"$/]
  ]
  for (const [what, server, message] of refused) {
    const agent = await createMtlsAgent({ ...client, server: server as ServerAuthorizer })
    t.teardown(() => agent.close())
    await t.rejects(request(`${url}/whoami`, { dispatcher: agent }), { code: 'ERR_MTLS_SERVER_UNAUTHORIZED', message }, what)
  }
  const approving = await createMtlsAgent({ ...client, server: identity => identity.id === payment })
  t.teardown(() => approving.close())
  t.equal((await request(`${url}/whoami`, { dispatcher: approving })).statusCode, 200, 'a function returning true approves')
})
