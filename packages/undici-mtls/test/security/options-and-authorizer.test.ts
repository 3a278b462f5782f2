// Attacks on "unknown options are refused" with options that are not plain objects, and on "a server()
// function approves only by returning true" with values and throws the existing tests do not try.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { request } from 'undici'
import { createMtlsAgent, type MtlsAgentOptions, type ServerAuthorizer } from '../../src/index.js'
import { startServer } from '../helpers.js'

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const ledger = 'spiffe://mycompany.com/production/ledger-service'

t.test('a misspelt server option behind a getter of a config class is refused like an own key', async t => {
  const { url, hits } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  class ClientConfig {
    cert = client.cert
    key = client.key
    ca = client.ca
    get sever (): string { return ledger } // meant: server
  }
  let created: Awaited<ReturnType<typeof createMtlsAgent>>
  try {
    created = await createMtlsAgent(new ClientConfig() as unknown as MtlsAgentOptions)
  } catch (err) {
    t.match(err, { code: 'ERR_MTLS_CLIENT_INVALID_OPTION' }, 'refused at creation: the secure outcome')
    return
  }
  t.teardown(() => created.close())
  // This got through before the fix: unknownOption() checks Object.keys() (own enumerable keys) only, while the agent reads its options
  // by name through the prototype chain: a class getter (or a key inherited from a defaults object) that is
  // misspelt is never refused, and the agent talks to any server of the CA, the very typo the check exists for.
  const status = await request(`${url}/whoami`, { dispatcher: created }).then(response => response.statusCode, () => null)
  t.equal(status, null, 'the server that is not the ledger service is not talked to')
  t.equal(hits.count, 0)
})

t.test('correctly refused: more ways for a server() function not to return true', async t => {
  const { url, hits } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const refused: Array<[string, () => unknown]> = [
    ['a Boolean object', () => Object(true)],
    ['the string "true"', () => 'true'],
    ['a generator function', function * () { yield true }],
    ['a thenable resolving true', () => ({ then: (resolve: (value: boolean) => void) => resolve(true) })],
    ['a throw of undefined', () => { throw undefined }], // eslint-disable-line no-throw-literal
    ['a throw of a null-prototype object', () => { throw Object.create(null) }],
    ['a throw whose message getter throws an Error', () => { throw { get message (): string { throw new Error('no message') } } }] // eslint-disable-line no-throw-literal
  ]
  for (const [what, server] of refused) {
    const agent = await createMtlsAgent({ ...client, server: server as unknown as ServerAuthorizer })
    t.teardown(() => agent.close())
    await t.rejects(request(`${url}/whoami`, { dispatcher: agent }), { code: 'ERR_MTLS_SERVER_UNAUTHORIZED' }, what)
  }
  t.equal(hits.count, 0, 'no request reached the server')
  for (const server of [Object('spiffe://mycompany.com/production/payment-service'), [Object('spiffe://mycompany.com/**')], null, '', []]) {
    await t.rejects(createMtlsAgent({ ...client, server } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION' }, `server: ${JSON.stringify(server)}`)
  }
})
