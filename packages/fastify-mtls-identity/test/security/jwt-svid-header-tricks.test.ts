// Ways to slip a JWT-SVID past the header rules: none gives an identity the header does not carry alone and whole.
import * as tls from 'node:tls'
import { once } from 'node:events'
import t from 'tap'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { hangLimit, startFastifyServer } from 'mtls-test-support'
import { request } from 'undici'
import { fastifyMtlsIdentity } from '../../src/index.js'
import { agentFor } from '../helpers.js'
import { workloadApi } from '../jwt-helpers.js'

const pki = await createTestPki()
const ORDER = 'spiffe://mycompany.com/production/order-service'
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'

t.test('query strings, schemes, casing, repeats and junk around the token', async t => {
  const { source } = await workloadApi(t)
  const { token } = await source.fetchJWTSVID({ audience: PAYMENT })
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const { url } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, { jwtSvid: { source, audience: PAYMENT } })
    app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
  })
  const who = async (headers: string[], path = '/who'): Promise<unknown> =>
    await (await request(`${url}${path}`, { headers, dispatcher: agentFor(t, pki) })).body.json()
  t.same(await who([], `/who?access_token=${token}`), { id: null, error: 'ERR_MTLS_JWT_SVID_MISSING' }, 'a token in the query string is ignored')
  t.same(await who(['authorization', `bearer ${token}`]), { id: ORDER, error: null }, 'the scheme is case-insensitive (RFC 9110)')
  t.same(await who(['authorization', `BEARER  ${token}`]), { id: ORDER, error: null }, 'and may be followed by more than one space')
  const malformed = { id: null, error: 'ERR_MTLS_JWT_SVID_MALFORMED' }
  t.same(await who(['authorization', token]), malformed, 'no scheme')
  t.same(await who(['authorization', `Basic ${token}`]), malformed, 'another scheme')
  t.same(await who(['authorization', `Bearer ${token} ${token}`]), malformed, 'two tokens')
  t.same(await who(['authorization', `Bearer ${token},Bearer ${token}`]), malformed, 'a list')
  t.same(await who(['authorization', `Bearer ${token}.`]), malformed, 'not three parts')
  t.same(await who(['authorization', `Bearer ${token.slice(0, token.lastIndexOf('.') + 1)}`]), malformed, 'no signature (alg none shape)')
  t.same(await who(['authorization', `Bearer\t${token}`]), malformed, 'a tab for the space')
  t.same(await who(['authorization', `Bearer ${token}`, 'authorization', `Bearer ${token}`]), { id: null, error: 'ERR_MTLS_JWT_SVID_REPEATED' }, 'two Authorization headers, even equal ones (Node keeps only the first)')
  t.same(await who(['authorization', 'Bearer x', 'authorization', `Bearer ${token}`]), { id: null, error: 'ERR_MTLS_JWT_SVID_REPEATED' }, 'a bad one before a good one')

  // Written byte for byte: a header name in odd case is the same header.
  const socket = tls.connect({ port: Number(new URL(url).port), host: '127.0.0.1', ca: pki.ca, servername: 'localhost' })
  socket.setTimeout(hangLimit(30_000), () => socket.destroy())
  await once(socket, 'secureConnect')
  let out = ''
  socket.on('data', chunk => { out += String(chunk) })
  socket.write(`GET /who HTTP/1.1\r\nHost: localhost\r\nAUTHORIZATION: Bearer ${token}\r\nauthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
  await once(socket, 'close')
  t.match(out.slice(out.indexOf('\r\n\r\n') + 4), /"error":"ERR_MTLS_JWT_SVID_REPEATED"/, 'repeats are found whatever the case of the name')
})
