// fetchOcspResponse: one POST, http: only unless allowed, a timeout and a size cap; every failure is ERR_MTLS_OCSP_FETCH.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { createRootCa } from 'mtls-pki'
import { fetchOcspResponse } from '../src/ocsp-fetch.js'
import { ocspRequest, verifyOcspResponse } from '../src/ocsp.js'

async function serve (t: { teardown: (fn: () => unknown) => void }, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/`
}

t.test('a POST of the request to the real responder gives a response that verifies', async t => {
  const ca = await (await createRootCa()).createIntermediate()
  const responder = await ca.startOcspResponder()
  t.teardown(responder.close)
  const cert = await ca.issue({ dnsNames: ['a.example'] })
  await responder.refresh()
  const der = (pem: string): Buffer => new X509Certificate(pem).raw
  const body = await fetchOcspResponse(responder.url, ocspRequest(der(cert.certificate), der(ca.certificate)).der)
  t.equal(verifyOcspResponse(body, { certificate: der(cert.certificate), issuer: der(ca.certificate) }).status, 'good')
})

t.test('what is sent: POST, the OCSP content type, the request as the body', async t => {
  let seen: { method?: string, type?: string, body?: string } = {}
  const url = await serve(t, (request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      seen = { method: request.method, type: request.headers['content-type'], body: Buffer.concat(chunks).toString() }
      response.end('answer')
    })
  })
  t.equal((await fetchOcspResponse(url, Buffer.from('request'))).toString(), 'answer')
  t.same(seen, { method: 'POST', type: 'application/ocsp-request', body: 'request' })
})

t.test('refused: not http:, not a URL, an HTTP error, too large, too slow', async t => {
  await t.rejects(fetchOcspResponse('https://127.0.0.1:1/', Buffer.alloc(1)), { code: 'ERR_MTLS_OCSP_FETCH', message: /https: URLs are not fetched .* unless allowHttps/ })
  await t.rejects(fetchOcspResponse('ldap://ocsp.example/', Buffer.alloc(1)), { code: 'ERR_MTLS_OCSP_FETCH', message: /ldap: URLs are not fetched/ })
  await t.rejects(fetchOcspResponse('no url', Buffer.alloc(1)), { code: 'ERR_MTLS_OCSP_FETCH', message: /is not a URL/ })
  // allowHttps lets the fetch be tried: nothing listens on port 1.
  await t.rejects(fetchOcspResponse('https://127.0.0.1:1/', Buffer.alloc(1), { allowHttps: true }), { code: 'ERR_MTLS_OCSP_FETCH', message: /cannot fetch/ })
  const failing = await serve(t, (_request, response) => { response.statusCode = 503; response.end('busy') })
  await t.rejects(fetchOcspResponse(failing, Buffer.alloc(1)), { code: 'ERR_MTLS_OCSP_FETCH', message: /answered HTTP 503/ })
  const large = await serve(t, (_request, response) => { response.end(Buffer.alloc(2000)) })
  await t.rejects(fetchOcspResponse(large, Buffer.alloc(1), { maxBytes: 1000 }), { code: 'ERR_MTLS_OCSP_FETCH', message: /over 1000 bytes/ })
  t.equal((await fetchOcspResponse(large, Buffer.alloc(1), { maxBytes: 2000 })).length, 2000)
  const silent = await serve(t, () => {})
  await t.rejects(fetchOcspResponse(silent, Buffer.alloc(1), { timeoutMs: 100 }), { code: 'ERR_MTLS_OCSP_FETCH', message: /no answer within 100 ms/ })
})
