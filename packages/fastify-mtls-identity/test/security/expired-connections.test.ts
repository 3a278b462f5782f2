// OpenSSL verifies a certificate at the full handshake only: a keep-alive connection, or a session resumed
// later, outlived its client certificate and kept its identity.
import { once } from 'node:events'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { agentFor, startServer, who } from '../helpers.js'

const pki = await createTestPki()

t.test('an identity ends with its certificate, on a kept-alive connection and on a resumed session', async t => {
  const notAfter = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000)
  const shortLived = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job', notBefore: new Date(Date.now() - 60_000), notAfter })
  const { url } = await startServer(t, pki)
  const agent = agentFor(t, pki, shortLived, { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 })
  let connections = 0
  agent.on('connect', () => { connections++ })
  t.same((await who(url, agent)).body, { id: 'spiffe://mycompany.com/production/batch-job', source: 'tls', error: null })

  // A session ticket from a connection made while the certificate was valid.
  const port = Number(new URL(url).port)
  const first = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, cert: shortLived.chain, key: shortLived.key })
  let session: Buffer | undefined
  first.on('session', ticket => { session = ticket })
  first.on('secureConnect', () => first.end('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
  first.resume()
  await once(first, 'close')
  t.ok(session !== undefined)

  await new Promise(resolve => setTimeout(resolve, notAfter.getTime() - Date.now() + 1200))
  t.same((await who(url, agent)).body, { id: null, source: null, error: 'CERT_HAS_EXPIRED' }, 'the same kept-alive connection, after notAfter')
  t.equal(connections, 1, 'it was the same connection')

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
