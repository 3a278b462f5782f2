import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki, type IssuedCertificate } from 'mtls-pki'
import { ChainVerifier, MaterialError, VerificationError } from '../src/index.js'
import { readPemBlocks } from '../src/internal.js'
import { readCrlFields } from '../src/der.js'

const pki = await createTestPki()
const der = (issued: IssuedCertificate | string): Buffer => readPemBlocks(typeof issued === 'string' ? issued : issued.certificate)[0]!.der
const verifier = new ChainVerifier({ ca: pki.ca, crl: pki.crl, intermediates: pki.intermediate.certificate })
const codeOf = (check: () => unknown): string | null => {
  try {
    check()
    return null
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err
    return err.code
  }
}

// What OpenSSL says of a client certificate in a real handshake, with the same trust.
async function opensslVerdict (issued: IssuedCertificate, trust: { ca: string, crl?: readonly string[] }): Promise<string | null> {
  const verdicts: Array<string | null> = []
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, ca: trust.ca, ...(trust.crl === undefined ? {} : { crl: [...trust.crl] }), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, socket => {
    verdicts.push(socket.authorized ? null : String(socket.authorizationError))
    socket.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const socket = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: pki.ca, servername: 'localhost', cert: issued.chain, key: issued.key })
  socket.on('error', () => {})
  await once(socket, 'close')
  server.close()
  return verdicts[0] as string | null
}

t.test('agrees with OpenSSL on every client certificate of the test set, with and without CRLs', async t => {
  const names = ['orderService', 'inventoryService', 'expired', 'notYetValid', 'otherCa', 'serverOnly', 'revoked', 'noSan', 'server'] as const
  const withoutCrl = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate })
  for (const name of names) {
    const issued = pki[name]
    // With CRLs loaded, OpenSSL looks for the unknown issuer's CRL first and says so; the verifier names the missing issuer.
    const openssl = await opensslVerdict(issued, { ca: pki.ca, crl: pki.crl })
    t.equal(codeOf(() => verifier.verify(der(issued), { purpose: 'client' })), openssl === 'UNABLE_TO_GET_CRL' && name === 'otherCa' ? 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' : openssl, `${name}, CRLs loaded`)
    t.equal(codeOf(() => withoutCrl.verify(der(issued), { purpose: 'client' })), await opensslVerdict(issued, { ca: pki.ca }), `${name}, no CRL`)
  }
  t.equal(codeOf(() => verifier.verify(der(pki.revoked), { purpose: 'client' })), 'CERT_REVOKED')
  t.equal(codeOf(() => verifier.verify(der(pki.otherCa), { purpose: 'client' })), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
  t.equal(codeOf(() => verifier.verify(der(pki.serverOnly), { purpose: 'client' })), 'INVALID_PURPOSE')
  t.equal(codeOf(() => verifier.verify(der(pki.server), { purpose: 'server' })), null, 'the server certificate is fit for a server')
})

t.test('takes Node\'s certificate object as well as DER', async t => {
  const { X509Certificate } = await import('node:crypto')
  t.equal(codeOf(() => verifier.verify(new X509Certificate(pki.orderService.certificate), { purpose: 'client' })), null)
  t.equal(codeOf(() => verifier.verify(new X509Certificate(pki.expired.certificate), { purpose: 'client' })), 'CERT_HAS_EXPIRED')
})

t.test('RSA and Ed25519 chains verify too, by the same rules', async t => {
  for (const keyType of ['rsa2048', 'ed25519'] as const) {
    const other = await createTestPki({ keyType })
    const typed = new ChainVerifier({ ca: other.ca, crl: other.crl, intermediates: other.intermediate.certificate })
    t.equal(codeOf(() => typed.verify(der(other.orderService), { purpose: 'client' })), null, `${keyType}: good`)
    t.equal(codeOf(() => typed.verify(der(other.revoked), { purpose: 'client' })), 'CERT_REVOKED', `${keyType}: revoked`)
    t.equal(codeOf(() => typed.verify(der(pki.orderService), { purpose: 'client' })), 'AKID_SKID_MISMATCH', `${keyType}: same names, another key (its key identifier tells)`)
  }
})

t.test('a chain needs its intermediate, which the verifier must be given', async t => {
  const rootOnly = new ChainVerifier({ ca: pki.ca })
  t.equal(codeOf(() => rootOnly.verify(der(pki.orderService), { purpose: 'client' })), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
  const intermediateTrusted = new ChainVerifier({ ca: pki.intermediate.certificate })
  t.equal(codeOf(() => intermediateTrusted.verify(der(pki.orderService), { purpose: 'client' })), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'a trusted intermediate without its root is not enough, as in OpenSSL')
  const bundle = new ChainVerifier({ ca: [pki.ca, pki.intermediate.certificate] })
  t.equal(codeOf(() => bundle.verify(der(pki.orderService), { purpose: 'client' })), null, 'a bundle of root and intermediate')
})

t.test('self-signed certificates, CA limits and time', async t => {
  const stranger = await createRootCa({ commonName: 'stranger' })
  t.equal(codeOf(() => verifier.verify(der(stranger.certificate), { purpose: 'client' })), 'DEPTH_ZERO_SELF_SIGNED_CERT')
  const withStranger = new ChainVerifier({ ca: pki.ca, intermediates: [pki.intermediate.certificate, stranger.certificate] })
  const strangerLeaf = der(await stranger.issue({ usage: 'client', commonName: 'x' }))
  t.equal(codeOf(() => withStranger.verify(strangerLeaf, { purpose: 'client' })), 'SELF_SIGNED_CERT_IN_CHAIN', 'an untrusted self-signed root in the pool')
  // The intermediate (pathLength 0) may sign leaves only; one more CA below it breaks the constraint.
  const deeper = await pki.intermediate.createIntermediate({ commonName: 'too deep' })
  const leaf = await deeper.issue({ usage: 'client', commonName: 'deep-leaf' })
  const deepVerifier = new ChainVerifier({ ca: pki.ca, intermediates: [pki.intermediate.certificate, deeper.certificate] })
  t.equal(codeOf(() => deepVerifier.verify(der(leaf), { purpose: 'client' })), 'PATH_LENGTH_EXCEEDED')
  const noCrl = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate })
  t.equal(codeOf(() => noCrl.verify(der(pki.orderService), { purpose: 'client', now: pki.orderService.notAfter.getTime() + 1000 })), 'CERT_HAS_EXPIRED')
  t.equal(codeOf(() => noCrl.verify(der(pki.orderService), { purpose: 'client', now: Date.now() - 3600 * 1000 })), 'CERT_NOT_YET_VALID')
  // As in OpenSSL, revocation (and so the CRLs' own dates) is checked before the certificates' validity.
  t.equal(codeOf(() => verifier.verify(der(pki.orderService), { purpose: 'client', now: Date.now() + 8 * 24 * 3600 * 1000 })), 'CRL_HAS_EXPIRED', 'CRLs are due within 7 days')
  t.equal(codeOf(() => verifier.verify(der(pki.orderService), { purpose: 'client', now: Date.now() - 3600 * 1000 })), 'CRL_NOT_YET_VALID')
})

t.test('with CRLs, every CA of the chain needs one signed by it', async t => {
  const rootCrlOnly = new ChainVerifier({ ca: pki.ca, crl: pki.crl.filter(crl => crl !== pki.crl[0]), intermediates: pki.intermediate.certificate })
  t.equal(codeOf(() => rootCrlOnly.verify(der(pki.orderService), { purpose: 'client' })), 'UNABLE_TO_GET_CRL')
  // A CRL that names the intermediate as issuer but is signed by another key vouches for nothing.
  const forger = await createRootCa({ commonName: 'mtls-pki test intermediate CA' })
  const forged = (await forger.createCrls())[0]!
  t.equal(readCrlFields(der(forged)).revoked.size, 0)
  const forgedOnly = new ChainVerifier({ ca: pki.ca, crl: [forged, pki.crl[1]!], intermediates: pki.intermediate.certificate })
  t.equal(codeOf(() => forgedOnly.verify(der(pki.orderService), { purpose: 'client' })), 'UNABLE_TO_GET_CRL')
})

t.test('glued certificates, junk and wrong options are refused with codes', async t => {
  t.equal(codeOf(() => verifier.verify(Buffer.concat([der(pki.orderService), der(pki.inventoryService)]), { purpose: 'client' })), 'ERR_MTLS_CERTIFICATE_MALFORMED')
  t.equal(codeOf(() => verifier.verify(Buffer.from('junk'), { purpose: 'client' })), 'ERR_MTLS_CERTIFICATE_MALFORMED')
  t.throws(() => verifier.verify(der(pki.orderService), { purpose: 'both' as 'client' }), TypeError)
  t.throws(() => new ChainVerifier({ ca: 'no pem here' }), MaterialError)
  t.throws(() => new ChainVerifier({ ca: pki.ca, crl: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' }), { code: 'ERR_MTLS_MATERIAL_CRL_MALFORMED' })
  t.throws(() => new ChainVerifier({ ca: 42 as unknown as string }), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID' })
})
