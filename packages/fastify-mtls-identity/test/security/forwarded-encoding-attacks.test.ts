// Spellings of one certificate that are not the one canonical spelling, and a proxy's verdict header written by
// someone else: from the trusted proxy's connection, none may yield an identity it should not.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { PEER_ERRORS } from '../../src/index.js'
import { agentFor, rawHttp1Request, startServer, who } from '../helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/proxy' })
const trustedProxies = { identities: ['spiffe://mycompany.com/infra/proxy'] }
const order = { id: 'spiffe://mycompany.com/production/order-service', source: 'forwarded', error: null }
const malformed = { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED }
const der = readPemBlocks(pki.orderService.certificate)[0]!.der
const base64 = der.toString('base64')
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** The same bytes with bits set under the padding: the last character before `=` moved up by one (its low bits are unused). */
function strayBits (text: string): string {
  const bare = text.replace(/=+$/, '')
  const last = ALPHABET.indexOf(bare[bare.length - 1] as string)
  return bare.slice(0, -1) + (ALPHABET[last + 1] as string) + text.slice(bare.length)
}

t.test('base64: only the canonical spelling of the certificate is read', async t => {
  const haproxy = await startServer(t, pki, { trustedProxies, forwarded: 'haproxy' })
  const rfc9440 = await startServer(t, pki, { trustedProxies, forwarded: 'rfc9440' })
  const traefik = await startServer(t, pki, { trustedProxies, forwarded: 'traefik' })
  const viaProxy = agentFor(t, pki, proxy)
  // Issued certificates vary in length: make one whose base64 is padded, so that there are bits under the padding.
  let padded = pki.orderService
  for (let n = 1; readPemBlocks(padded.certificate)[0]!.der.length % 3 === 0 && n <= 20; n++) {
    padded = await pki.intermediate.issue({ usage: 'client', spiffeId: `spiffe://mycompany.com/production/order-service${'-'.repeat(n)}` })
  }
  const paddedBase64 = readPemBlocks(padded.certificate)[0]!.der.toString('base64')
  t.ok(paddedBase64.endsWith('='), 'a certificate whose base64 ends in padding')
  t.equal(Buffer.from(strayBits(paddedBase64), 'base64').compare(Buffer.from(paddedBase64, 'base64')), 0, 'stray bits decode to the same bytes (Node ignores them)')

  const cases: Array<[string, string, string[]]> = [
    // These got through before the fix: Node's decoder ignores the bits under the padding, so a second spelling of one certificate was read.
    ['base64 with bits under the padding', haproxy.url, ['x-ssl-client-cert', strayBits(paddedBase64)]],
    ['RFC 9440 with bits under the padding', rfc9440.url, ['client-cert', `:${strayBits(paddedBase64)}:`]],
    ['RFC 9440 unpadded, with bits where the padding was', rfc9440.url, ['client-cert', `:${strayBits(paddedBase64).replace(/=+$/, '')}:`]],
    // Refused before and after: padding in the middle, too much of it, part of it, or none where base64-der needs it.
    ['RFC 9440 with "=" in the middle', rfc9440.url, ['client-cert', `:${base64.slice(0, 40)}=${base64.slice(40)}:`]],
    ['RFC 9440 with three "="', rfc9440.url, ['client-cert', `:${paddedBase64.replace(/=+$/, '')}===:`]],
    ['RFC 9440 with part of its padding', rfc9440.url, ['client-cert', `:${paddedBase64.replace(/=+$/, '')}${paddedBase64.endsWith('==') ? '=' : '=='}:`]],
    ['RFC 9440 with a base64 group cut short', rfc9440.url, ['client-cert', `:${paddedBase64.replace(/=+$/, '').slice(0, -1)}:`]],
    ['RFC 9440 with a stray character after the padding', rfc9440.url, ['client-cert', `:${paddedBase64}A:`]],
    ['base64-der without its padding', haproxy.url, ['x-ssl-client-cert', paddedBase64.replace(/=+$/, '')]],
    // Traefik's escaping covers `+`, `/` and `=`; another escape is no base64.
    ['Traefik with an escape other than %2B, %2F, %3D', traefik.url, ['x-forwarded-tls-client-cert', `%41${base64.slice(1)}`]],
    ['Traefik with a bare "%"', traefik.url, ['x-forwarded-tls-client-cert', `${base64.slice(0, 10)}%${base64.slice(10)}`]],
    ['Traefik with an escaped comma (two certificates)', traefik.url, ['x-forwarded-tls-client-cert', `${base64}%2C${base64}`]]
  ]
  for (const [what, url, header] of cases) t.same((await who(url, viaProxy, header)).body, malformed, what)
  t.same((await who(traefik.url, viaProxy, ['x-forwarded-tls-client-cert', base64.replace(/\+/g, '%2b').replace(/\//g, '%2f').replace(/=/g, '%3d')])).body, order, 'Traefik: lower-case hex in its three escapes is the same text')
})

t.test('PEM: one certificate and nothing but whitespace around it', async t => {
  const nginx = await startServer(t, pki, { trustedProxies, forwarded: 'nginx' })
  const pem = await startServer(t, pki, { trustedProxies, forwarded: { header: 'x-client-pem', format: 'pem' } })
  const viaProxy = agentFor(t, pki, proxy)
  const good = pki.orderService.certificate
  const lines = good.trimEnd().split('\n')
  const withBody = (body: string): string => `${lines[0]}\n${body}\n${lines[lines.length - 1]}\n`
  const body = lines.slice(1, -1).join('\n')
  const cases: Array<[string, string]> = [
    // These got through before the fix: text outside the block was skipped, and the body's decoder skipped what is not base64.
    ['junk after END CERTIFICATE', `${good}junk`],
    ['a character that is not base64 in the body', withBody(body.replace(/^(.{10})/, '$1!'))],
    ['a dot in the body', withBody(body.replace(/^(.{10})/, '$1.'))],
    ['text before the block', `subject=CN=order-service\n${good}`],
    // Refused before and after.
    ['a damaged block after the certificate', `${good}-----BEGIN CERTIFICATE-----\nAAAA\n`],
    ['a damaged block before a good one', `-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${good}`],
    ['two certificates', `${good}${pki.inventoryService.certificate}`],
    ['padding in the middle of the body', withBody(body.replace(/^(.{8})/, '$1=='))],
    ['BEGIN without END', `${lines.slice(0, -1).join('\n')}\n`]
  ]
  for (const [what, text] of cases) t.same((await who(nginx.url, viaProxy, ['x-ssl-client-cert', encodeURIComponent(text)])).body, malformed, what)
  t.same((await who(pem.url, viaProxy, ['x-client-pem', `${good.replaceAll('\n', ' ')} junk`])).body, malformed, 'pem format: junk after END')
  t.same((await who(pem.url, viaProxy, ['x-client-pem', good.replaceAll('\n', ' ')])).body, order, 'pem format: spaces for line breaks are still read')
  t.same((await who(nginx.url, viaProxy, ['x-ssl-client-cert', encodeURIComponent(good.replaceAll('\n', '\r\n'))])).body, order, 'CRLF line breaks are whitespace')
})

t.test('the proxy verdict header: only one exact success from the trusted proxy is believed', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'nginx', proxyVerdict: 'nginx', verifyForwarded: false })
  const cert = `X-SSL-Client-Cert: ${encodeURIComponent(pki.orderService.certificate)}\r\n`
  const send = async (verdictLines: string): Promise<{ status: number, body: string }> => await rawHttp1Request(url, pki, proxy, `${verdictLines}${cert}`)
  const cases: Array<[string, string, string]> = [
    ['repeated, both SUCCESS', 'X-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-Verify: SUCCESS\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_REPEATED],
    ['repeated in two cases of the name', 'x-ssl-client-verify: SUCCESS\r\nX-SSL-CLIENT-VERIFY: FAILED:unable to verify\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_REPEATED],
    ['an empty copy beside a success', 'X-SSL-Client-Verify:\r\nX-SSL-Client-Verify: SUCCESS\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_REPEATED],
    ['in another case', 'X-SSL-Client-Verify: success\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['a list of two', 'X-SSL-Client-Verify: SUCCESS, SUCCESS\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['empty', 'X-SSL-Client-Verify:\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['a prefix of success', 'X-SSL-Client-Verify: SUCCESSFUL\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['underscores for dashes: another header', 'X_SSL_Client_Verify: SUCCESS\r\n', PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_MISSING]
  ]
  for (const [what, lines, error] of cases) {
    const { status, body } = await send(lines)
    t.equal(status, 200, `${what}: served`)
    t.same(JSON.parse(body), { id: null, source: null, error }, what)
  }
  // HTTP's optional whitespace around a field value is not part of it (RFC 9110 5.5): the parser removes it.
  t.same(JSON.parse((await send('X-SSL-Client-Verify:   SUCCESS  \t\r\n')).body), order, 'spaces around SUCCESS are HTTP\'s, not the value\'s')
  // A client that is not the proxy cannot lend a verdict either: its headers are ignored, it stays itself.
  const { body } = await who(url, agentFor(t, pki, pki.inventoryService), ['X-SSL-Client-Verify', 'SUCCESS', 'X-SSL-Client-Cert', encodeURIComponent(pki.orderService.certificate)])
  t.same(body, { id: 'spiffe://mycompany.com/production/inventory-service', source: 'tls', error: null })
})
