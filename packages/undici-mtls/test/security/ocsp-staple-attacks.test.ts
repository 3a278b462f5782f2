// Attacks on the client's OCSP checks by a server that holds a certificate of the CA (or its key).
import { execFile } from 'node:child_process'
import { X509Certificate, webcrypto } from 'node:crypto'
import { createServer } from 'node:https'
import { readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { x509 } from 'mtls-pki/x509'
import { fetchOcspResponse, ocspRequest } from 'mtls-core/ocsp'
import { tempDir, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent, type MtlsAgentOptions } from '../../src/index.js'

const run = promisify(execFile)
const der = (pem: string): Buffer => new X509Certificate(pem).raw
const root = await createRootCa({ commonName: 'staple attack root' })
const intermediate = await root.createIntermediate({ commonName: 'staple attack CA' })
const responder = await intermediate.startOcspResponder({ delegated: true })
t.teardown(responder.close)
const client = await intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/order-service', usage: 'client' })

/** A Node HTTPS server presenting `chain` (PEM, leaf first) and stapling `staple`; the agent's answer: a status or an error code. */
async function answer (t: Teardown, chain: string, key: string, staple: Buffer | null, options: Partial<MtlsAgentOptions> = {}): Promise<number | string> {
  const server = createServer({ cert: chain, key, ca: root.certificate, requestCert: true }, (_request, response) => { response.end('ok') })
  server.on('OCSPRequest', (_certificate: Buffer, _issuer: Buffer, callback: (err: null, response: Buffer | null) => void) => { callback(null, staple) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const agent = await createMtlsAgent({ cert: client.chain, key: client.key, ca: root.certificate, ...options })
  t.teardown(() => agent.close())
  try {
    const response = await request(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`, { dispatcher: agent })
    await response.body.text()
    return response.statusCode
  } catch (err) {
    return (err as { code: string }).code
  }
}

async function serverCert (ca = intermediate, mustStaple = false): Promise<IssuedCertificate> {
  const cert = await ca.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', mustStaple })
  await responder.refresh()
  return cert
}

t.test('a CA certificate of its own making, named like the issuer and sent first, cannot vouch for a revoked certificate', async t => {
  const cert = await serverCert()
  intermediate.revoke(cert, { reason: 'keyCompromise' })
  await responder.refresh()
  // The impostor: the intermediate's subject and key identifier, a key the attacker holds, expired (so OpenSSL takes
  // the real intermediate sent after it, while a position-linked view of the chain shows the impostor as the issuer).
  const real = new x509.X509Certificate(intermediate.certificate)
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  const impostor = await x509.X509CertificateGenerator.create({
    serialNumber: '0badc0de',
    subject: real.subjectName,
    issuer: real.issuerName,
    notBefore: new Date(Date.now() - 2 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), real.getExtension(x509.SubjectKeyIdentifierExtension) as x509.Extension]
  })
  // openssl ocsp, as the impostor CA, says "good" for the certificate's serial.
  const dir = await tempDir(t)
  const file = (name: string): string => join(dir, name)
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64').replace(/(.{64})/g, '$1\n')
  await writeFile(file('impostor.pem'), impostor.toString('pem'))
  await writeFile(file('impostor-key.pem'), `-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----\n`)
  await writeFile(file('index.txt'), `V\t991231235959Z\t\t${cert.serialNumber.toUpperCase()}\tunknown\t/CN=localhost\n`)
  await writeFile(file('request.der'), ocspRequest(der(cert.certificate), Buffer.from(impostor.rawData)).der)
  await run('openssl', ['ocsp', '-index', file('index.txt'), '-CA', file('impostor.pem'), '-rsigner', file('impostor.pem'), '-rkey', file('impostor-key.pem'), '-reqin', file('request.der'), '-respout', file('forged.der'), '-nmin', '60'])
  const forged = await readFile(file('forged.der'))
  const chain = `${cert.certificate}${impostor.toString('pem')}\n${intermediate.certificate}`
  t.equal(await answer(t, chain, cert.key, forged), 'ERR_MTLS_OCSP_INVALID', 'the impostor did not sign the certificate: the real issuer judges, and the response is not about its certificate')
  // The same chain with the real responder's answer: OpenSSL took the real intermediate, and so does the client.
  const real_ = await fetchOcspResponse(responder.url, ocspRequest(der(cert.certificate), der(intermediate.certificate)).der)
  t.equal(await answer(t, chain, cert.key, real_), 'ERR_MTLS_SERVER_CERT_REVOKED')
})

t.test('the issuer is found in a chain sent out of order, and among the trusted CAs for a certificate sent alone', async t => {
  const cert = await serverCert()
  const good = await fetchOcspResponse(responder.url, ocspRequest(der(cert.certificate), der(intermediate.certificate)).der)
  const unrelated = await createRootCa({ commonName: 'unrelated CA' })
  t.equal(await answer(t, `${cert.certificate}${unrelated.certificate}${intermediate.certificate}`, cert.key, good), 200, 'out of order')
  // A certificate of the root, sent alone: its issuer is the trusted root.
  const rootResponder = await root.startOcspResponder()
  t.teardown(rootResponder.close)
  const fromRoot = await root.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })
  await rootResponder.refresh()
  const rootStaple = await fetchOcspResponse(rootResponder.url, ocspRequest(der(fromRoot.certificate), der(root.certificate)).der)
  t.equal(await answer(t, fromRoot.certificate, fromRoot.key, rootStaple), 200, 'root-issued, leaf alone')
})

t.test("ocsp 'off' does not make a revoked must-staple server acceptable: it staples nothing unasked, and must-staple refuses", async t => {
  const cert = await serverCert(intermediate, true)
  intermediate.revoke(cert)
  await responder.refresh()
  const revoked = await fetchOcspResponse(responder.url, ocspRequest(der(cert.certificate), der(intermediate.certificate)).der)
  t.equal(await answer(t, cert.chain, cert.key, revoked, { ocsp: 'off' }), 'ERR_MTLS_OCSP_STAPLE_MISSING')
  t.equal(await answer(t, cert.chain, cert.key, revoked, { ocsp: 'prefer' }), 'ERR_MTLS_SERVER_CERT_REVOKED')
})
