// The SPIFFE bundle format (SPIFFE_Trust_Domain_and_Bundle.md, section 4): parsed strictly, written back the same.
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { MAX_BUNDLE_BYTES, WorkloadApiError, formatSpiffeBundle, parseSpiffeBundle } from '../src/index.js'
import { pemToDer } from '../src/testing.js'

const TD = 'partner.example'
const pki = await createTestPki({ trustDomain: TD })
const root = pemToDer(pki.ca)[0]!
const leaf = pemToDer(pki.orderService.certificate)[0]!
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const x509Key = { use: 'x509-svid', ...new X509Certificate(root).publicKey.export({ format: 'jwk' }), x5c: [root.toString('base64')] }
const jwtKey = { use: 'jwt-svid', kid: 'k1', ...ec.publicKey.export({ format: 'jwk' }) }

t.test('a bundle with both kinds of authority, a sequence and a hint is read, and written back to the same', async t => {
  const bundle = parseSpiffeBundle(JSON.stringify({ keys: [x509Key, jwtKey, { use: 'something-else', kty: 'oct' }], spiffe_sequence: 7, spiffe_refresh_hint: 60 }), `spiffe://${TD}`)
  t.equal(bundle.trustDomain, TD)
  t.equal(bundle.x509Authorities.length, 1)
  t.ok(bundle.x509Authorities[0]!.equals(root))
  t.same([...bundle.jwtAuthorities.keys.keys()], ['k1'], 'the unknown use is ignored')
  t.ok(bundle.jwtAuthorities.keys.get('k1')!.equals(ec.publicKey))
  t.equal(bundle.sequence, 7)
  t.equal(bundle.refreshHintSeconds, 60)
  const again = parseSpiffeBundle(Buffer.from(formatSpiffeBundle({ ...bundle, jwtAuthorities: bundle.jwtAuthorities.keys, sequence: 7, refreshHintSeconds: 60 })), TD)
  t.ok(again.x509Authorities[0]!.equals(root))
  t.ok(again.jwtAuthorities.keys.get('k1')!.equals(ec.publicKey))
  t.equal(again.sequence, 7)
  t.equal(again.refreshHintSeconds, 60)
  const bare = parseSpiffeBundle(new Uint8Array(Buffer.from('{"keys":[]}')), TD)
  t.same([bare.sequence, bare.refreshHintSeconds, bare.x509Authorities.length, bare.jwtAuthorities.keys.size], [null, null, 0, 0])
})

t.test('formatSpiffeBundle publishes public keys only, even when given a private key', async t => {
  const text = formatSpiffeBundle({ jwtAuthorities: new Map([['k', rsa.privateKey]]) })
  t.notMatch(text, /"d"/)
  t.same(JSON.parse(text), { keys: [{ use: 'jwt-svid', kid: 'k', ...rsa.publicKey.export({ format: 'jwk' }) }] })
})

const malformed: Array<[string, string | Buffer, string]> = [
  ['not JSON', '{"keys": [', 'ERR_MTLS_BUNDLE_NOT_JSON'],
  ['over 4 MiB', Buffer.alloc(MAX_BUNDLE_BYTES + 1, 0x20), 'ERR_MTLS_BUNDLE_TOO_LARGE'],
  ['not an object', '[]', 'ERR_MTLS_BUNDLE_MALFORMED'],
  ['keys not a list', '{"keys": {}}', 'ERR_MTLS_BUNDLE_MALFORMED'],
  ['a key not an object', '{"keys": [1]}', 'ERR_MTLS_BUNDLE_MALFORMED'],
  ['a key without use', JSON.stringify({ keys: [{ kty: 'EC' }] }), 'ERR_MTLS_BUNDLE_MALFORMED'],
  ['x509-svid without x5c', JSON.stringify({ keys: [{ use: 'x509-svid' }] }), 'ERR_MTLS_BUNDLE_X5C'],
  ['x509-svid with two certificates', JSON.stringify({ keys: [{ ...x509Key, x5c: [root.toString('base64'), root.toString('base64')] }] }), 'ERR_MTLS_BUNDLE_X5C'],
  ['x509-svid with garbage in x5c', JSON.stringify({ keys: [{ use: 'x509-svid', x5c: ['bm90IGEgY2VydA=='] }] }), 'ERR_MTLS_BUNDLE_X5C'],
  ['x509-svid with x5c not base64', JSON.stringify({ keys: [{ use: 'x509-svid', x5c: ['%%%'] }] }), 'ERR_MTLS_BUNDLE_X5C'],
  ['x509-svid whose key is not its certificate\'s', JSON.stringify({ keys: [{ ...x509Key, ...ec.publicKey.export({ format: 'jwk' }) }] }), 'ERR_MTLS_BUNDLE_X5C'],
  ['x509-svid of a leaf', JSON.stringify({ keys: [{ use: 'x509-svid', x5c: [leaf.toString('base64')] }] }), 'ERR_MTLS_BUNDLE_NOT_CA'],
  ['jwt-svid without kid', JSON.stringify({ keys: [{ ...jwtKey, kid: undefined }] }), 'ERR_MTLS_BUNDLE_KID_MISSING'],
  ['jwt-svid with a symmetric key', JSON.stringify({ keys: [{ use: 'jwt-svid', kid: 'h', kty: 'oct', k: 'c2VjcmV0' }] }), 'ERR_MTLS_BUNDLE_KEY_TYPE'],
  ['jwt-svid with alg HS256', JSON.stringify({ keys: [{ ...jwtKey, alg: 'HS256' }] }), 'ERR_MTLS_BUNDLE_KEY_TYPE'],
  ['jwt-svid on secp256k1', JSON.stringify({ keys: [{ ...jwtKey, crv: 'secp256k1' }] }), 'ERR_MTLS_BUNDLE_KEY_TYPE'],
  ['jwt-svid with private material', JSON.stringify({ keys: [{ use: 'jwt-svid', kid: 'p', ...ec.privateKey.export({ format: 'jwk' }) }] }), 'ERR_MTLS_BUNDLE_KEY_TYPE'],
  ['jwt-svid that is no valid key', JSON.stringify({ keys: [{ ...jwtKey, x: 'AAAA' }] }), 'ERR_MTLS_BUNDLE_KEY_TYPE'],
  ['a kid twice', JSON.stringify({ keys: [jwtKey, jwtKey] }), 'ERR_MTLS_BUNDLE_DUPLICATE_KID'],
  ['a negative sequence', JSON.stringify({ keys: [], spiffe_sequence: -1 }), 'ERR_MTLS_BUNDLE_SEQUENCE'],
  ['a fractional sequence', JSON.stringify({ keys: [], spiffe_sequence: 1.5 }), 'ERR_MTLS_BUNDLE_SEQUENCE'],
  ['a sequence as a string', JSON.stringify({ keys: [], spiffe_sequence: '1' }), 'ERR_MTLS_BUNDLE_SEQUENCE'],
  ['a zero refresh hint', JSON.stringify({ keys: [], spiffe_refresh_hint: 0 }), 'ERR_MTLS_BUNDLE_REFRESH_HINT'],
  ['a refresh hint as a string', JSON.stringify({ keys: [], spiffe_refresh_hint: '60' }), 'ERR_MTLS_BUNDLE_REFRESH_HINT']
]

for (const [what, document, code] of malformed) {
  t.test(`refused: ${what} (${code})`, async t => {
    const error = t.throws(() => parseSpiffeBundle(document, TD)) as WorkloadApiError
    t.ok(error instanceof WorkloadApiError)
    t.equal(error.code, code)
    t.match(error.message, `bundle of "${TD}" refused`)
  })
}

t.test('a trust domain that is not one is refused before the document is read', async t => {
  t.throws(() => parseSpiffeBundle('{"keys":[]}', 'Not A Domain'), { code: /^ERR_MTLS_SPIFFE_ID/ })
})
