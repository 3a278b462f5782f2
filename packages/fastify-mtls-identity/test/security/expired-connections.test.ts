// OpenSSL verifies a certificate at the full handshake only: a keep-alive connection, or a session resumed
// later, outlived its client certificate and kept its identity.
import { once } from 'node:events'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { agentFor, beforeExpiry, pastExpiry, startServer, who } from '../helpers.js'

const pki = await createTestPki()

t.test('an identity ends with its certificate, on a kept-alive connection and on a resumed session', async t => {
  // Kept alive while the test waits for the expiry: an idle limit that only a hang reaches.
  const idle = hangLimit(30_000)
  const { url, port, agent, connections, before, session, shortLived, expiry } = await beforeExpiry(t, async notAfter => {
    const shortLived = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job', notBefore: new Date(Date.now() - 60_000), notAfter })
    const { url } = await startServer(t, pki)
    const agent = agentFor(t, pki, shortLived, { keepAliveTimeout: idle, keepAliveMaxTimeout: idle })
    const connections = { count: 0 }
    agent.on('connect', () => { connections.count++ })
    const before = (await who(url, agent)).body
    // A session ticket from a connection made while the certificate was valid.
    const port = Number(new URL(url).port)
    const first = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, cert: shortLived.chain, key: shortLived.key })
    let session: Buffer | undefined
    first.on('session', ticket => { session = ticket })
    first.on('secureConnect', () => first.end('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
    first.resume()
    await once(first, 'close')
    return { url, port, agent, connections, before, session, shortLived }
  })
  t.same(before, { id: 'spiffe://mycompany.com/production/batch-job', source: 'tls', error: null })
  t.ok(session !== undefined)

  await pastExpiry(expiry)
  t.same((await who(url, agent)).body, { id: null, source: null, error: 'CERT_HAS_EXPIRED' }, 'the same kept-alive connection, after notAfter')
  t.equal(connections.count, 1, 'it was the same connection')

  const resumed = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, cert: shortLived.chain, key: shortLived.key, session })
  let reused = false
  let answer = ''
  resumed.on('secureConnect', () => {
    reused = resumed.isSessionReused()
    resumed.write('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  })
  resumed.on('data', chunk => { answer += String(chunk) })
  await once(resumed, 'close')
  t.ok(reused, 'a resumed session (optional mode lets it through to the routes)')
  t.match(answer, /"error":"CERT_HAS_EXPIRED"/, 'which has no identity')
})
