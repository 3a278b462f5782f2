// Attacks on "unknown options are refused" with options objects that are not plain (a prototype of defaults,
// a config class), and on the CA-as-leaf refusal of require mode, which leaves no TLS 1.3 session to resume.
import { once } from 'node:events'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { loadServerTls, type ServerTlsOptions } from '../../src/index.js'
import { attempt, clientOf, startServer } from '../helpers.js'

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

t.test('options given through a prototype (defaults layered with Object.create) are used or refused, never dropped', async t => {
  // Layered configuration: site-wide defaults (the CRL) under per-service settings.
  const defaults = { crl: [...pki.crl] }
  const layered = Object.assign(Object.create(defaults) as ServerTlsOptions, material)
  t.equal((layered as { crl?: unknown }).crl, defaults.crl, 'the option reads as set')
  const served = await startServer(t, layered)
  t.same(served.app.mtls.status().crls.map(crl => crl.issuer), ['CN=mtls-pki test intermediate CA', 'CN=mtls-pki test root CA'], 'used: the server holds the CRLs given through the prototype')
  const revoked = await attempt(served.port, clientOf(pki, pki.revoked))
  // This got through before the fix: loadServerTls reads mode, minVersion and the rest by name (through the prototype), but passes the
  // material on as an object-rest copy (own keys only), while unknownOption() checks own keys only too: a crl
  // (or crlFile, ca, ...) given through a prototype is neither refused nor used. The server runs without the
  // CRL and the revoked client is served.
  t.equal(revoked.status, null, 'the revoked client gets no answer')
})

t.test('a misspelt key behind a getter of a config class is refused like an own one', async t => {
  class TlsConfig {
    cert = material.cert
    key = material.key
    ca = material.ca
    get crlfile (): string { return '/etc/tls/crl.pem' } // meant: crlFile
  }
  // This got through before the fix: unknownOption() lists Object.keys() only: a getter on a class (or any inherited key) is never checked,
  // so the typo the check exists for (`crlfile`, the repository's own example) goes through and the server
  // starts without a CRL.
  await t.rejects(loadServerTls(new TlsConfig() as unknown as ServerTlsOptions), { code: 'FST_MTLS_INVALID_OPTION' }, 'the unknown key is refused')
})

t.test('correctly refused: a CA:TRUE client leaf in require mode, and no session ticket for it', async t => {
  const { app, port } = await startServer(t, material)
  // The first connection may still receive a session ticket before it is closed.
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, cert: pki.caAsLeaf.chain, key: pki.caAsLeaf.key })
  let session: Buffer | null = null
  socket.on('session', ticket => { session = ticket })
  socket.on('secureConnect', () => socket.write('GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n'))
  socket.on('error', () => {})
  socket.setTimeout(hangLimit(30_000), () => socket.destroy()) // the server closes it at once; this only ends a hang
  await once(socket, 'close')
  const fresh = await attempt(port, clientOf(pki, pki.caAsLeaf))
  t.equal(fresh.status, null, 'a full handshake with a CA leaf gets no answer')
  // OpenSSL sends a TLS 1.3 ticket on the server's first read or write after the handshake; require mode destroys
  // the socket before either, so there is no session to resume. Should a ticket ever come first, the resumed
  // session must be refused too: record-attacks.test.ts resumes a refused handshake's ticket (a chain the trust refuses).
  t.equal(session, null, 'no ticket reaches the refused connection')
  t.ok(app.mtls.stats().failures.ca_as_leaf >= 1, 'counted as ca_as_leaf')
})
