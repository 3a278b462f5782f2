// What the tests of fastify-mtls's connection records (record-attacks, record-chains) share: a server that shows a
// connection's record, a connection that keeps its session ticket, cross-signed copies of a CA, and a client CA
// whose CRL is replaced under an open connection.
import { webcrypto } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tls from 'node:tls'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { createRootCa, type CertificateAuthority, type IssuedCertificate } from 'mtls-pki'
import { x509 } from 'mtls-pki/x509'
import { startFastifyServer, tempDir, until, type Teardown } from 'mtls-test-support'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from '../../src/index.js'
import { attempt, keptAlive, recordRoute } from '../helpers.js'

export const VERIFIED = '{"verified":true,"refusal":null}'

/** A server with fastify-mtls watching its files, GET /record, and `reloaded(write)`: writes, then waits for the reload. */
export async function server (t: Teardown, files: ServerTlsOptions): Promise<{ app: FastifyInstance, port: number, reloaded: (write: () => Promise<void>) => Promise<void> }> {
  const serverTls = await loadServerTls(files)
  const { app, port } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } })
    recordRoute(app)
  })
  const reloaded = async (write: () => Promise<void>): Promise<void> => {
    const before = app.mtls.stats().reloads.succeeded
    await write()
    await until(() => app.mtls.stats().reloads.succeeded > before, 'the new trust applied')
  }
  return { app, port, reloaded }
}

// A session ticket of the connection, when the server sent one before the connection ended; and what it was answered.
export async function withTicket (port: number, ca: string, chain: string, key: string, session?: Buffer): Promise<{ ticket: Buffer | null, body: string | null, reused: boolean }> {
  return await new Promise(resolve => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: chain, key, ...(session === undefined ? {} : { session }) })
    let ticket: Buffer | null = null
    let data = ''
    let reused = false
    socket.on('session', s => { ticket = s })
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET /record HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', chunk => { data += String(chunk) })
    socket.on('error', () => {})
    socket.on('close', () => { resolve({ ticket, body: data === '' ? null : data.split('\r\n\r\n')[1] ?? data, reused }) })
  })
}

/** The signing key of a P-256 PEM key. */
export async function signingKeyOf (pem: string): Promise<webcrypto.CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64')
  return await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
}

// A CA certificate with the name, key and key identifier of `ca`, issued (really signed) by `by`: a cross-certificate.
export async function crossSigned (ca: { certificate: string }, by: { certificate: string, key: string }, validity?: { notBefore: Date, notAfter: Date }): Promise<string> {
  const copied = new x509.X509Certificate(ca.certificate)
  const issuer = new x509.X509Certificate(by.certificate)
  const made = await x509.X509CertificateGenerator.create({
    serialNumber: '0c705500',
    subject: copied.subjectName,
    issuer: issuer.subjectName,
    notBefore: validity?.notBefore ?? copied.notBefore,
    notAfter: validity?.notAfter ?? copied.notAfter,
    publicKey: copied.publicKey,
    signingKey: await signingKeyOf(by.key),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      ...copied.extensions.filter(extension => extension.type !== '2.5.29.35'),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey)
    ]
  })
  return made.toString('pem') + '\n'
}

// A CRL of `ca` that lists nothing, valid for a day, with `extension` beside its authority key identifier.
export async function emptyCrlWith (ca: { certificate: string, key: string }, extension: x509.Extension): Promise<string> {
  const certificate = new x509.X509Certificate(ca.certificate)
  const crl = await x509.X509CrlGenerator.create({
    issuer: certificate.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 86_400_000),
    signingKey: await signingKeyOf(ca.key),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    entries: [],
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(certificate.publicKey), extension]
  })
  return crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----') + '\n'
}

/** A root with a server CA and a client CA, a server that watches one CRL file of all three, and a client's connection to it, kept open and served. */
export interface ClientCaCrlScenario {
  readonly clientCa: CertificateAuthority
  readonly client: IssuedCertificate
  /** Replaces the client CA's CRL in the file with `crl` (the root's and the server CA's stay) and waits for the reload. */
  readonly replaceClientCaCrl: (crl: string) => Promise<void>
  /** Checks that OpenSSL refuses a new handshake of the client, then that the kept connection is closed as well. */
  readonly expectClientCut: (t: Test) => Promise<void>
}

export async function clientCaCrlScenario (t: Test, name: string): Promise<ClientCaCrlScenario> {
  const root = await createRootCa({ commonName: `${name} root` })
  const serverCa = await root.createIntermediate({ commonName: `${name} server CA` })
  const clientCa = await root.createIntermediate({ commonName: `${name} client CA` })
  const serverCert = await serverCa.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const client = await clientCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/client' })
  const crlFile = join(await tempDir(t), 'crl.pem')
  const others = async (): Promise<string> => [await root.createCrl(), await serverCa.createCrl()].join('')
  await writeFile(crlFile, await clientCa.createCrl() + await others())
  const { port, reloaded } = await server(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, crlFile })
  const open = await keptAlive(t, port, root.certificate, { chain: client.chain, key: client.key })
  t.equal(await open.ask(), VERIFIED, 'served')
  return {
    clientCa,
    client,
    replaceClientCaCrl: async crl => { await reloaded(async () => { await writeFile(crlFile, crl + await others()) }) },
    expectClientCut: async t => {
      t.equal((await attempt(port, { chain: client.chain, key: client.key, ca: root.certificate }, {}, '/record')).status, null, 'OpenSSL refuses a new handshake of the same client under the new CRL')
      await until(open.closed, 'the open connection closed')
      t.equal(await open.ask(), '(closed)', 'the open connection is closed as well')
    }
  }
}
