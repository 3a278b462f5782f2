// What the tests of fastify-mtls's connection records (record-attacks, record-chains) share: a server that shows a
// connection's record, a connection that keeps its session ticket, and cross-signed copies of a CA.
import { webcrypto } from 'node:crypto'
import * as tls from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { x509 } from 'mtls-pki/x509'
import { startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from '../../src/index.js'
import { recordRoute } from '../helpers.js'

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
