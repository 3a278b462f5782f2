import { createHash } from 'node:crypto'
import { once } from 'node:events'
import * as tls from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import type { IssuedCertificate, TestPki } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { hangLimit, startFastifyServer, type Teardown } from 'mtls-test-support'
import { request, type Agent } from 'undici'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../src/index.js'

export { agentFor } from 'mtls-test-support'

/** A Fastify mTLS server with the identity plugin; GET /who answers with what the request knows of its peer, GET /thumbprint with its RFC 8705 thumbprint. */
export async function startServer (t: Teardown, pki: TestPki, identity: FastifyMtlsIdentityOptions = {}, mode: MtlsMode = 'optional', fastifyOptions: Record<string, unknown> = {}, trust: { ca?: string | string[], crl?: readonly string[] } = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: trust.ca ?? pki.ca, ...(trust.crl === undefined ? {} : { crl: [...trust.crl] }), mode })
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, identity)
    app.get('/who', async request => ({
      id: request.peerIdentity?.id ?? null,
      source: request.peerIdentity?.source ?? null,
      error: request.peerCertificateError
    }))
    app.get('/thumbprint', async request => request.peerIdentity?.thumbprintS256 ?? '')
    app.get('/anonymous', async () => 'ok')
  })
  return { app, url }
}

export interface Who { id: string | null, source: string | null, error: string | null }

/** GET /who through an agent, with extra headers (a flat list, so names may repeat). */
export async function who (url: string, dispatcher: Agent, headers: string[] = []): Promise<{ status: number, body: Who }> {
  const response = await request(`${url}/who`, { dispatcher, headers })
  return { status: response.statusCode, body: await response.body.json() as Who }
}

export { beforeExpiry, pastExpiry } from 'mtls-test-support'

/** PEM as OpenSSL's PEM_write_bio_X509 writes it (what Envoy encodes): 64-character lines and a final newline. */
export function opensslPem (der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`
}

/** Envoy's PercentEncoding::urlEncode: every byte but ALPHA, DIGIT, `*`, `-`, `.` and `_` as `%XX`, upper-case hex. */
export function envoyUrlEncode (text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map(byte => /[A-Za-z0-9*\-._]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('')
}

/**
 * The XFCC element Envoy writes (ConnectionManagerUtility::mutateXfccRequestHeader): `By=` for each URI SAN of
 * its own certificate, `Hash=` the lowercase hex SHA-256 of the client's DER, then the chosen details in Envoy's
 * fixed order (Cert, Chain, Subject, URI, DNS): `Cert="<URL-encoded PEM>"` quoted, `URI=` bare, once per URI SAN.
 */
export function envoyElement (proxyUris: string[], client: IssuedCertificate, clientUris: string[]): string {
  const der = readPemBlocks(client.certificate)[0]!.der
  return [
    ...proxyUris.map(uri => `By=${uri}`),
    `Hash=${createHash('sha256').update(der).digest('hex')}`,
    `Cert="${envoyUrlEncode(opensslPem(der))}"`,
    ...(clientUris.length === 0 ? ['URI='] : clientUris.map(uri => `URI=${uri}`))
  ].join(';')
}

/** GET /who over HTTP/1.1 written byte for byte (`head`: header lines, each ending in CRLF), from a connection presenting `cert`. */
export async function rawHttp1Request (url: string, pki: TestPki, cert: IssuedCertificate, head: string): Promise<{ status: number, body: string }> {
  const socket = tls.connect({ port: Number(new URL(url).port), host: '127.0.0.1', ca: pki.ca, servername: 'localhost', cert: cert.chain, key: cert.key })
  socket.setTimeout(hangLimit(30_000), () => socket.destroy()) // only a hang: the answer ends the connection
  await once(socket, 'secureConnect')
  let out = ''
  socket.on('data', chunk => { out += String(chunk) })
  socket.write(`GET /who HTTP/1.1\r\nHost: localhost\r\n${head}Connection: close\r\n\r\n`)
  await once(socket, 'close')
  return { status: Number(out.slice(9, 12)), body: out.slice(out.indexOf('\r\n\r\n') + 4) }
}
