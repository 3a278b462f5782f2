import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { request } from 'undici'
import { MtlsAgent, createMtlsAgent, type MtlsAgentOptions } from '../../src/index.js'
import { startServer } from '../helpers.js'

// The attack: a JavaScript caller misspells `server`, and the agent, knowing no such option, trusts any
// server the CA ever certified. Unknown keys now fail creation; the check they meant still holds.

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const ledger = 'spiffe://mycompany.com/production/ledger-service'

t.test('the correctly spelt server option refuses a server of the same CA that is not the expected one', async t => {
  const { url, hits } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const agent = await createMtlsAgent({ ...client, server: ledger })
  t.teardown(() => agent.close())
  await t.rejects(request(`${url}/whoami`, { dispatcher: agent }), {
    code: 'ERR_MTLS_SERVER_UNAUTHORIZED',
    message: `server not authorized: expected ${ledger}, got "spiffe://mycompany.com/production/payment-service"`
  })
  t.equal(hits.count, 0, 'the request never reached the server')
})

t.test('a misspelt server option ("sever") is refused instead of silently authorizing any server', async t => {
  const typo = { ...client, sever: ledger } as unknown as MtlsAgentOptions
  await t.rejects(createMtlsAgent(typo), {
    code: 'ERR_MTLS_CLIENT_INVALID_OPTION',
    message: /^createMtlsAgent: unknown option "sever" \(did you mean "server"\?\); known options: certFile, cert, /
  })
})

t.test('every unknown top-level key is refused, before any file is read', async t => {
  const missingFiles = { certFile: '/nonexistent/tls.crt', keyFile: '/nonexistent/tls.key', caFile: '/nonexistent/ca.crt' }
  await t.rejects(createMtlsAgent({ ...missingFiles, verifyHostName: false } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /unknown option "verifyHostName" \(did you mean "verifyHostname"\?\)/ })
  await t.rejects(createMtlsAgent({ ...missingFiles, rejectUnauthorized: false } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /unknown option "rejectUnauthorized"/ })
})

t.test('the watch object form refuses unknown keys, and watch must be a boolean or that object', async t => {
  await t.rejects(createMtlsAgent({ ...client, watch: { debounceMS: 10 } } as unknown as MtlsAgentOptions), {
    code: 'ERR_MTLS_CLIENT_INVALID_OPTION',
    message: /^createMtlsAgent watch: unknown option "debounceMS" \(did you mean "debounceMs"\?\); known options: debounceMs, poll$/
  })
  await t.rejects(createMtlsAgent({ ...client, watch: 'yes' } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /watch must be true, false or \{ debounceMs, poll \}; got "yes"/ })
  const tuned = await createMtlsAgent({ ...client, watch: { debounceMs: 10, poll: false } })
  t.teardown(() => tuned.close())
  t.equal(tuned.source.current.leaf.fingerprint256, pki.orderService.fingerprint256, 'the known watch keys are accepted: the agent holds the client certificate')
})

t.test('an agent built directly from a source checks its options too', async t => {
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  t.throws(() => new MtlsAgent(agent.source, { sever: ledger } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /unknown option "sever"/ })
})
