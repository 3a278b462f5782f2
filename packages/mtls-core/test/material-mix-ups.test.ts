import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki, writeCertificateFiles } from 'mtls-pki'
import { loadMaterial, type MaterialInput } from '../src/index.js'

// The two mix-ups of certificate files seen most: a certificate file with the leaf alone (the chain file left
// out), and certFile and caFile swapped. Both used to get a message that did not say what to do
// (ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN without a word about the intermediate; the swap blamed on the key).

const pki = await createTestPki()
const dir = await mkdtemp(join(tmpdir(), 'mtls-core-mix-ups-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const server = await writeCertificateFiles(dir, 'server', pki.server)
const client = await writeCertificateFiles(dir, 'client', pki.orderService)

const refusal = async (input: MaterialInput, side: 'server' | 'client' = 'server'): Promise<{ code?: string, message: string, file?: string }> =>
  await loadMaterial(input, { side }).then(() => { throw new Error('loaded') }, (err: { code?: string, message: string, file?: string }) => err)

/** What a client that trusts only the root sees of a server serving `cert`: null when it connected. */
async function clientVerdict (cert: string, key: string): Promise<string | null> {
  const listener = tls.createServer({ cert, key, minVersion: 'TLSv1.3' }, socket => socket.end())
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  try {
    return await new Promise(resolve => {
      const socket = tls.connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, servername: 'localhost', ca: pki.ca })
      socket.on('secureConnect', () => { socket.destroy(); resolve(null) })
      socket.on('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
    })
  } finally {
    listener.close()
  }
}

t.test('a certificate file with the leaf alone is refused with the way out: the chain file', async t => {
  const leafAlone = await refusal({ certFile: server.certFile, keyFile: server.keyFile, caFile: server.caFile })
  t.equal(leafAlone.code, 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN')
  t.equal(leafAlone.file, server.certFile)
  t.match(leafAlone.message, /server\.pem: the chain does not lead to any trusted CA .*; the file holds only the leaf, and its issuer is not a trusted CA: if that issuer is an intermediate CA, give the chain file instead, the leaf followed by the intermediate \(mtls-pki writes it as NAME-chain\.pem beside NAME\.pem; with cert-manager, tls\.crt holds the chain\)$/)
  const option = await refusal({ cert: pki.orderService.certificate, key: pki.orderService.key, ca: pki.ca }, 'client')
  t.match(option.message, /^cert option: .*; the cert option holds only the leaf/, 'the same for PEM given as an option, on the client side too')

  // Over real TLS, what the hint prevents and what it proposes: a server serving its leaf alone is refused by
  // clients that trust the root (OpenSSL: UNABLE_TO_VERIFY_LEAF_SIGNATURE); the chain file it names serves.
  t.equal(await clientVerdict(pki.server.certificate, pki.server.key), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  const material = await loadMaterial({ certFile: server.chainFile, keyFile: server.keyFile, caFile: server.caFile }, { side: 'server' })
  t.equal(await clientVerdict(material.cert, material.key), null, 'the chain file serves')
})

t.test('the intermediate is suggested only when the leaf came alone from a CA the trust does not hold', async t => {
  const other = await createRootCa({ commonName: 'another root' })
  const notHinted: Array<[string, MaterialInput]> = [
    // leaf and intermediate given, from another hierarchy: an intermediate would change nothing
    ['a whole chain of another CA', { cert: pki.otherCa.chain, key: pki.otherCa.key, ca: pki.ca }],
    // a CA of the issuer's name is trusted, but did not sign it: a wrong or rotated CA, not a missing intermediate
    ['a trusted CA of the issuer\'s name with another key', { cert: pki.orderService.certificate, key: pki.orderService.key, ca: (await createRootCa({ commonName: 'mtls-pki test intermediate CA' })).certificate }],
    // self-signed: there is no issuer to send
    ['a self-signed certificate', { cert: other.certificate, key: other.key, ca: pki.ca }]
  ]
  for (const [what, input] of notHinted) {
    const err = await refusal(input, 'client')
    t.equal(err.code, 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', what)
    t.notMatch(err.message, /holds only the leaf|chain file/, `${what}: no word about the intermediate`)
  }
})

t.test('a CA certificate where the leaf belongs is named as such, before the key is blamed', async t => {
  const swapped = await refusal({ certFile: server.caFile, keyFile: server.keyFile, caFile: server.chainFile })
  t.equal(swapped.code, 'ERR_MTLS_MATERIAL_CERT_IS_CA', 'not ERR_MTLS_MATERIAL_KEY_MISMATCH')
  t.equal(swapped.file, server.caFile, 'the file at fault is the certificate file')
  t.equal(swapped.message, `${server.caFile}: the certificate file holds a CA certificate (CA:TRUE, "CN=mtls-pki test root CA") where the leaf belongs: certFile and caFile are swapped (the private key belongs to the certificate in ${server.chainFile})`)

  const unsure = await refusal({ certFile: server.caFile, keyFile: server.keyFile, caFile: client.chainFile })
  t.equal(unsure.code, 'ERR_MTLS_MATERIAL_CERT_IS_CA')
  t.match(unsure.message, /the certificate file holds a CA certificate \(CA:TRUE, "CN=mtls-pki test root CA"\) where the leaf belongs: certFile and caFile swapped\?$/, 'the key is in neither file: a question')

  const options = await refusal({ cert: pki.intermediate.certificate, key: pki.orderService.key, ca: pki.orderService.chain }, 'client')
  t.equal(options.message, 'cert option: the cert option holds a CA certificate (CA:TRUE, "CN=mtls-pki test intermediate CA") where the leaf belongs: cert and ca are swapped (the private key belongs to the certificate in ca option)')

  const unreadableCa = await refusal({ cert: pki.ca, key: pki.server.key, ca: '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n' })
  t.match(unreadableCa, { code: 'ERR_MTLS_MATERIAL_CERT_IS_CA', message: /where the leaf belongs: cert and ca swapped\?$/ }, 'a CA input that does not parse is no proof of a swap')

  const reversed = await refusal({ cert: pki.intermediate.certificate + pki.server.certificate, key: pki.server.key, ca: pki.ca })
  t.equal(reversed.code, 'ERR_MTLS_MATERIAL_CERT_IS_CA')
  t.match(reversed.message, /the cert option holds a CA certificate \(CA:TRUE, "CN=mtls-pki test intermediate CA"\) first: the leaf must come first \(the private key belongs to certificate 2 of it\)$/)

  const wrongKey = await refusal({ certFile: server.chainFile, keyFile: client.keyFile, caFile: server.caFile })
  t.equal(wrongKey.code, 'ERR_MTLS_MATERIAL_KEY_MISMATCH', 'a leaf with a key of another certificate is still a key mismatch')

  // Once the files are given the right way round, the server serves over real TLS.
  const material = await loadMaterial({ certFile: server.chainFile, keyFile: server.keyFile, caFile: server.caFile }, { side: 'server' })
  t.equal(await clientVerdict(material.cert, material.key), null)
})
