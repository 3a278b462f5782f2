// What fastify-mtls records of a connection and its plugins read: found through the proxy of its TLS socket that
// HTTP/2 hands each stream, and the mark of TLS options built from trust kept by trust domain, on a real server.
import { once } from 'node:events'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { handshakeTrust, isTrustDomainTls, markTlsSocket, markTrustDomainTls, recordHandshakeTrust, recordRefusal, refusalOf, tlsSocketOf } from '../src/internal.js'

const pki = await createTestPki()

t.test('an HTTP/2 stream\'s socket proxy finds what was recorded for the TLS socket it stands for', async t => {
  const server = http2.createSecureServer({ cert: pki.server.chain, key: pki.server.key })
  const trust = {}
  let real: TLSSocket | undefined
  server.on('secureConnection', (socket: TLSSocket) => {
    real = socket
    markTlsSocket(socket)
    recordHandshakeTrust(socket, trust)
    recordRefusal(socket, 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED')
  })
  const seen: Array<Record<string, unknown>> = []
  server.on('stream', stream => {
    const proxy = stream.session?.socket as TLSSocket
    seen.push({ distinct: proxy !== real, resolved: tlsSocketOf(proxy) === real, trust: handshakeTrust(proxy) === trust, refusal: refusalOf(proxy) })
    stream.respond({ ':status': 200 })
    stream.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const session = http2.connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: pki.ca, servername: 'localhost' })
  t.teardown(() => session.close())
  const request = session.request({ ':path': '/' })
  request.resume()
  await once(request, 'end')
  t.same(seen, [{ distinct: true, resolved: true, trust: true, refusal: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' }])
  const plain = {}
  t.equal(tlsSocketOf(plain), plain, 'an unmarked object stands for itself')
  t.equal(handshakeTrust(plain), undefined)
  t.equal(refusalOf(plain), undefined)
})

t.test('a TLS server started with options marked as trust kept by trust domain is told from another', async t => {
  const marked = { cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] }
  markTrustDomainTls(marked)
  markTrustDomainTls({}) // no ca: nothing to mark
  const scoped = https.createServer(marked)
  const plain = https.createServer({ cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] })
  t.equal(isTrustDomainTls(scoped), true)
  t.equal(isTrustDomainTls(plain), false, 'the same CAs in another list')
  t.equal(isTrustDomainTls(https.createServer({ cert: pki.server.chain, key: pki.server.key })), false, 'no ca at all')
  scoped.setSecureContext({ cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] })
  t.equal(isTrustDomainTls(scoped), false, 'a context set since, from unmarked options, is what counts')
})
