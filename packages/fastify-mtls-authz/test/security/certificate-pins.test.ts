// Attack on `sha256:` pins in the policy's deny list: the certificate's signature lies outside the part its CA
// signed, and an ECDSA signature (r, s) has a twin (r, n - s) that verifies as well. The holder of a denied
// certificate re-encodes it with the twin signature: same key, same names, same issuer, another fingerprint.
import { createHash } from 'node:crypto'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { readPemBlocks, toPem } from 'mtls-core/internal'
import { agentFor, call, startServer } from '../helpers.js'

const pki = await createTestPki()
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

interface Tlv { tag: number, start: number, end: number, headerStart: number }
function tlv (der: Buffer, at: number): Tlv {
  const tag = der[at] as number
  let length = der[at + 1] as number
  let start = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[start + i] as number)
    start += bytes
  }
  return { tag, start, end: start + length, headerStart: at }
}
function encode (tag: number, content: Buffer): Buffer {
  const n = content.length
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), length, content])
}
function integer (value: bigint): Buffer {
  let hex = value.toString(16)
  if (hex.length % 2 === 1) hex = '0' + hex
  let bytes = Buffer.from(hex, 'hex')
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes])
  return encode(0x02, bytes)
}

/** The same certificate with its ECDSA signature (r, s) replaced by (r, n - s). */
function withTwinSignature (pem: string): string {
  const der = readPemBlocks(pem)[0]!.der
  const outer = tlv(der, 0)
  const tbs = tlv(der, outer.start)
  const algorithm = tlv(der, tbs.end)
  const bitString = tlv(der, algorithm.end)
  const signature = tlv(der, bitString.start + 1)
  const r = tlv(der, signature.start)
  const s = tlv(der, r.end)
  const sValue = BigInt('0x' + der.subarray(s.start, s.end).toString('hex'))
  const twin = encode(0x30, Buffer.concat([der.subarray(r.headerStart, r.end), integer(P256_ORDER - sValue)]))
  const rebuilt = encode(0x30, Buffer.concat([der.subarray(outer.start, algorithm.end), encode(0x03, Buffer.concat([Buffer.from([0]), twin]))]))
  return toPem(rebuilt, 'CERTIFICATE')
}
const fingerprint = (pem: string): string => createHash('sha256').update(readPemBlocks(pem)[0]!.der).digest('hex').toUpperCase().match(/../g)!.join(':')

t.test('a sha256: pin cannot deny: its holder re-encodes the signature, so a deny pin is refused at registration', async t => {
  const denied = pki.inventoryService
  const twin = withTwinSignature(denied.certificate)
  t.not(fingerprint(twin), denied.fingerprint256, 'the twin has another fingerprint')
  // Why: OpenSSL accepts the twin (same key, names and issuer) in the handshake, under another fingerprint.
  const { url } = await startServer(t, pki, { policy: { defaultPolicy: 'allow' } }, app => { app.get('/who', async request => request.peerIdentity?.fingerprint256 ?? null) })
  const response = await call(url, agentFor(t, pki, { chain: twin + pki.intermediate.certificate, key: denied.key }), 'GET', '/who')
  t.equal(response.status, 200, 'the twin is a verified peer')

  // So a deny rule written as a pin would be dodged: it is refused, in the policy and in a route.
  await t.rejects(startServer(t, pki, { policy: { defaultPolicy: 'allow', deny: [`sha256:${denied.fingerprint256}`] } }, () => {}),
    { code: 'FST_MTLS_AUTHZ_INVALID_POLICY', message: /a sha256: certificate pin cannot deny/ })
  await t.rejects(startServer(t, pki, { policy: {} }, app => { app.get('/x', { config: { mtls: { roles: ['a'], deny: [`SHA256:${denied.fingerprint256}`] } } }, async () => 'x') }),
    { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /config.mtls.deny: a sha256: certificate pin cannot deny/ })
  // Pins still allow: the twin of an allowed certificate belongs to the same key holder.
  const { url: pinned } = await startServer(t, pki, { policy: {} }, app => { app.get('/pinned', { config: { mtls: { allow: [`sha256:${denied.fingerprint256}`] } } }, async () => 'ok') })
  t.equal((await call(pinned, agentFor(t, pki, denied), 'GET', '/pinned')).status, 200)
})
