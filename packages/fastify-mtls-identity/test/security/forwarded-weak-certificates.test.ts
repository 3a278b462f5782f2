// Issue 24: certificates OpenSSL refuses, each of which got a 200 on a role route when a trusted proxy forwarded it:
// weak signature algorithms and keys, extensions OpenSSL evaluates, encodings that break the rules, and a certificate
// revoked in its CRL shard while another shard is newer. Each goes through a real server (fastify-mtls and
// fastify-mtls-identity, trusted proxy, forwarded header) to a route that needs a role; none gets an identity.
import t from 'tap'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import {
  KU, KeyPool, algorithms, authorityFromPem, caExtensions, clientExtensions, extensions as ext, forgeCrl, issueCa, issueLeaf, name, nullValue, rsaPss, toPem,
  type Authority, type Extension, type ForgeKey, type KeyKind, type LeafOptions
} from 'mtls-test-support/certificate-forge'
import { request } from 'undici'
import { startFastifyServer } from 'mtls-test-support'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../../src/index.js'
import { agentFor } from '../helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const trustedProxies = { identities: ['spiffe://mycompany.com/infra/**'] }
const root = authorityFromPem(pki.root.certificate, pki.root.key)
const intermediate = authorityFromPem(pki.intermediate.certificate, pki.intermediate.key)
const pool = new KeyPool({ p256: 2, rsa2048: 1 })
const ca = (label: string, kind: KeyKind): Authority => issueCa(root, { key: pool.take(kind), subject: name(['CN', `forwarded ${label} intermediate`]) })
const rsaIntermediate = ca('RSA', 'rsa2048')
// CAs with keys OpenSSL refuses: in the forwarded trust as CAs, so that only their keys are at fault.
const weakCas = { rsa512: ca('RSA-512', 'rsa512'), rsa768: ca('RSA-768', 'rsa768'), secp112r1: ca('secp112r1', 'secp112r1'), explicit: ca('explicit parameters', 'p256-explicit') }

function leaf (issuer: Authority, options: Partial<LeafOptions> & { keyKind?: KeyKind } = {}): Buffer {
  const key: ForgeKey = options.key ?? pool.take(options.keyKind ?? 'p256')
  return issueLeaf(issuer, { spiffeId: 'spiffe://mycompany.com/production/order-service', ...options, key })
}
const withExtra = (...extra: Extension[]): Buffer => leaf(intermediate, { extraExtensions: extra })

// Every class of issue 24 but the CRL one, with the refusal request.peerCertificateError gives.
const attacks: Array<[string, () => Buffer, string]> = [
  ['md5WithRSA under the OIW OID', () => leaf(rsaIntermediate, { algorithm: algorithms.rsaMd5Oiw }), 'CA_MD_TOO_WEAK'],
  ['RSA-PSS with SHA-1', () => leaf(rsaIntermediate, { algorithm: rsaPss('sha1') }), 'CA_MD_TOO_WEAK'],
  ['sha1WithRSAEncryption', () => leaf(rsaIntermediate, { algorithm: algorithms.rsaSha1 }), 'CA_MD_TOO_WEAK'],
  ['ecdsa-with-SHA1', () => leaf(intermediate, { algorithm: algorithms.ecdsaSha1 }), 'CA_MD_TOO_WEAK'],
  ['an RSA-512 client key', () => leaf(intermediate, { keyKind: 'rsa512' }), 'EE_KEY_TOO_SMALL'],
  ['an RSA-768 client key', () => leaf(intermediate, { keyKind: 'rsa768' }), 'EE_KEY_TOO_SMALL'],
  ['a secp112r1 client key', () => leaf(intermediate, { keyKind: 'secp112r1' }), 'EE_KEY_TOO_SMALL'],
  ['a client key with explicit curve parameters', () => leaf(intermediate, { keyKind: 'p256-explicit' }), 'EC_KEY_EXPLICIT_PARAMS'],
  ['an RSA-512 intermediate', () => leaf(weakCas.rsa512), 'CA_KEY_TOO_SMALL'],
  ['an RSA-768 intermediate', () => leaf(weakCas.rsa768), 'CA_KEY_TOO_SMALL'],
  ['a secp112r1 intermediate', () => leaf(weakCas.secp112r1), 'CA_KEY_TOO_SMALL'],
  ['an intermediate with explicit curve parameters', () => leaf(weakCas.explicit), 'EC_KEY_EXPLICIT_PARAMS'],
  ['nsCertType without the SSL client bit', () => withExtra(ext.nsCertType(1 << 1)), 'ERR_MTLS_EXTENSION_UNSUPPORTED'],
  ['proxyCertInfo', () => withExtra(ext.proxyCertInfo()), 'PROXY_CERTIFICATES_NOT_ALLOWED'],
  ['RFC 3779 IP address blocks not within the issuer\'s', () => withExtra(ext.ipAddrBlocks([[[10, 0, 0, 0], 8]])), 'ERR_MTLS_EXTENSION_UNSUPPORTED'],
  ['an authority key identifier that is not the issuer\'s', () => {
    const key = pool.take('p256')
    return leaf(intermediate, { key, extensions: [...clientExtensions(key, intermediate).filter(e => e.oid !== '2.5.29.35'), ext.authorityKeyIdentifier({ keyIdentifier: Buffer.alloc(20, 7) })] })
  }, 'AKID_SKID_MISMATCH'],
  ['the outer signature algorithm differs from the signed one', () => leaf(intermediate, { tamper: { outerAlgorithm: algorithms.ecdsaSha384.identifier } }), 'SIGNATURE_ALGORITHM_INCONSISTENCY'],
  ['a signature BIT STRING with unused bits', () => leaf(intermediate, { tamper: { unusedBits: 1 } }), 'ERR_MTLS_FORWARDED_HEADER_MALFORMED'],
  ['bytes after the signature inside the certificate', () => leaf(intermediate, { tamper: { afterSignature: nullValue() } }), 'ERR_MTLS_FORWARDED_HEADER_MALFORMED']
]

interface Charge { status: number, body: { charged?: boolean, error?: string | null } }

/**
 * A server behind a trusted proxy whose route needs the role `payments:charge`, which only a forwarded identity
 * holds: a 401 with request.peerCertificateError without one, as fastify-mtls-authz answers.
 */
async function paymentService (identity: Partial<FastifyMtlsIdentityOptions>): Promise<(certificate: Buffer) => Promise<Charge>> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'require' })
  const { url } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, { trustedProxies, forwarded: 'aspnet', ...identity })
    app.addHook('onRequest', async (request, reply) => {
      if (request.peerIdentity?.source !== 'forwarded') return await reply.code(401).send({ error: request.peerCertificateError })
    })
    app.post('/api/payments/charge', async () => ({ charged: true }))
  })
  const viaProxy = agentFor(t, pki, proxy)
  return async certificate => {
    const response = await request(`${url}/api/payments/charge`, { method: 'POST', dispatcher: viaProxy, headers: { 'x-client-cert': certificate.toString('base64') } })
    return { status: response.statusCode, body: await response.body.json() as Charge['body'] }
  }
}

const forwardedTrust = [pki.ca, pki.intermediate.certificate, ...[rsaIntermediate, ...Object.values(weakCas)].map(authority => toPem(authority.certificate))]

t.test('every weak algorithm, key, extension and encoding of issue 24, forwarded: no identity, a 401, never a charge', async t => {
  const charge = await paymentService({ ca: forwardedTrust })
  t.same(await charge(leaf(intermediate)), { status: 200, body: { charged: true } }, 'control: a conforming certificate is charged')
  t.same(await charge(leaf(rsaIntermediate, { algorithm: rsaPss('sha256') })), { status: 200, body: { charged: true } }, 'control: RSA-PSS with SHA-256 is charged')
  for (const [what, build, code] of attacks) t.same(await charge(build()), { status: 401, body: { error: code } }, what)
})

t.test('revoked in its CRL shard while another shard of the issuer is newer: refused', async t => {
  // The root issues the client directly and shards its CRLs by distribution point; CA certificates have a CRL of their own.
  const shard = (uri: string): Extension => ext.issuingDistributionPoint({ uris: [uri], onlyUser: true })
  const revokedKey = pool.take('p256')
  const revoked = leaf(root, { key: revokedKey, serial: Buffer.from('0badc0de', 'hex'), extraExtensions: [ext.crlDistributionPoints([{ uris: ['http://crl.test/a.crl'] }])] })
  const kept = leaf(root, { extraExtensions: [ext.crlDistributionPoints([{ uris: ['http://crl.test/b.crl'] }])] })
  const hour = 3_600_000
  const crls = [
    forgeCrl({ issuer: root, extraExtensions: [ext.issuingDistributionPoint({ onlyCa: true })] }),
    forgeCrl({ issuer: root, thisUpdate: new Date(Date.now() - 2 * hour), revoked: [{ serial: Buffer.from('0badc0de', 'hex') }], extraExtensions: [shard('http://crl.test/a.crl')] }),
    forgeCrl({ issuer: root, thisUpdate: new Date(Date.now() - hour), extraExtensions: [shard('http://crl.test/b.crl')] })
  ].map(der => toPem(der, 'X509 CRL'))
  const charge = await paymentService({ ca: pki.ca, crl: crls })
  t.same(await charge(kept), { status: 200, body: { charged: true } }, 'a client of the newer shard, listed nowhere, is charged')
  t.same(await charge(revoked), { status: 401, body: { error: 'CERT_REVOKED' } }, 'the client revoked in the older shard is not')
})

t.test('a CRL with an unknown critical extension, and one from a CA whose key usage lacks cRLSign: neither vouches for anyone', async t => {
  const rootCrl = forgeCrl({ issuer: root })
  const key = pool.take('p256')
  const noCrlSign = issueCa(root, { key, subject: name(['CN', 'forwarded no-cRLSign intermediate']), extensions: [...caExtensions(key, root).filter(e => e.oid !== '2.5.29.15'), ext.keyUsage(KU.keyCertSign)] })
  const cases: Array<[string, Authority, Buffer, string]> = [
    ['an unknown critical CRL extension', intermediate, forgeCrl({ issuer: intermediate, extraExtensions: [ext.unknown(true)] }), 'UNHANDLED_CRITICAL_CRL_EXTENSION'],
    ['a CRL issuer without cRLSign', noCrlSign, forgeCrl({ issuer: noCrlSign }), 'KEYUSAGE_NO_CRL_SIGN']
  ]
  for (const [what, issuer, crl, code] of cases) {
    const charge = await paymentService({ ca: [pki.ca, toPem(issuer.certificate)], crl: [rootCrl, crl].map(der => toPem(der, 'X509 CRL')) })
    t.same(await charge(leaf(issuer)), { status: 401, body: { error: code } }, what)
  }
})
