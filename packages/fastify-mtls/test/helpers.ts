import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import * as tls from 'node:tls'
import type { FastifyInstance } from 'fastify'
import type { CertificateAuthority, IssuedCertificate, TestPki } from 'mtls-pki'
import { hangLimit, startFastifyServer, tempDir, type Teardown } from 'mtls-test-support'
import { fastifyMtls, loadServerTls, type FastifyMtlsOptions, type MtlsConnection, type ServerTls, type ServerTlsOptions } from '../src/index.js'

export { capturedLogger, tempDir, type Teardown } from 'mtls-test-support'

/** A Fastify server with fastify-mtls on 127.0.0.1, port 0, answering GET /whoami with what TLS told it. */
export async function startServer (t: Teardown, tlsOptions: ServerTlsOptions, plugin: Omit<FastifyMtlsOptions, 'tls'> = {}, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, port: number, serverTls: ServerTls }> {
  const serverTls = await loadServerTls(tlsOptions)
  const { app, port } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, ...plugin })
    app.get('/whoami', async request => {
      const socket = request.raw.socket as tls.TLSSocket
      return { authorized: socket.authorized, peer: socket.getPeerX509Certificate()?.subjectAltName ?? null }
    })
  })
  return { app, port, serverTls }
}

export interface Attempt {
  /** HTTP status of GET /whoami, or null when the connection was refused. */
  status: number | null
  body: string
  errorCode: string | null
  /** Fingerprint of the server certificate the client saw. */
  serverFingerprint: string | null
  reused: boolean
  /** The key-exchange group the client agreed (`getEphemeralKeyInfo().name`), null when the handshake failed. */
  group: string | null
}

/** One real TLS connection with one HTTP/1.1 GET; resolves however it ends. */
export async function attempt (port: number, client: Partial<IssuedCertificate> & { ca: string }, extra: tls.ConnectionOptions = {}, path = '/whoami'): Promise<Attempt> {
  return await new Promise(resolve => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: client.ca, ...(client.chain === undefined ? {} : { cert: client.chain, key: client.key }), ...extra })
    let data = ''
    let errorCode: string | null = null
    let serverFingerprint: string | null = null
    let reused = false
    let group: string | null = null
    socket.on('secureConnect', () => {
      serverFingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? null
      reused = socket.isSessionReused() // read now: after 'close' the TLS state is gone (and Node 20 crashes reading it)
      group = (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? null
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    })
    socket.on('data', chunk => { data += String(chunk) })
    socket.on('error', (err: NodeJS.ErrnoException) => { errorCode = err.code ?? err.message })
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]
      resolve({ status: status === undefined ? null : Number(status), body: data.split('\r\n\r\n')[1] ?? '', errorCode, serverFingerprint, reused, group })
    })
  })
}

/** Client options for a certificate of the test set. */
export function clientOf (pki: TestPki, cert?: IssuedCertificate): Partial<IssuedCertificate> & { ca: string } {
  return cert === undefined ? { ca: pki.ca } : { ca: pki.ca, chain: cert.chain, key: cert.key }
}

/** Resolves with the next material the server's source swaps in (fails when none comes: a hang). */
export async function nextUpdate (serverTls: ServerTls): Promise<string> {
  const limit = hangLimit(30_000)
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no reload within ${limit} ms`)) }, limit)
    serverTls.source.on('update', function listener (material) {
      clearTimeout(timer)
      serverTls.source.off('update', listener)
      resolve(material.leaf.fingerprint256)
    })
  })
}

/** Connects once with a client certificate, makes one request, and resolves with the session ticket the server issued. */
export async function sessionFrom (port: number, client: IssuedCertificate, ca: string): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    let session: Buffer | undefined
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: client.chain, key: client.key })
    socket.on('session', s => { session = s })
    socket.on('secureConnect', () => socket.write('GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => { session === undefined ? reject(new Error('no session ticket')) : resolve(session) })
  })
}

/** A server's files in a temporary directory: its chain and key, the root as CA file, and the intermediate's current CRLs. */
export async function serverFilesWithCrl (t: Teardown, root: CertificateAuthority, intermediate: CertificateAuthority, server: IssuedCertificate): Promise<{ certFile: string, keyFile: string, caFile: string, crlFile: string }> {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt'), crlFile: join(dir, 'crl.pem') }
  await writeFile(files.certFile, server.chain)
  await writeFile(files.keyFile, server.key)
  await writeFile(files.caFile, root.certificate)
  await writeFile(files.crlFile, (await intermediate.createCrls()).join(''))
  return files
}

/** A kept-alive HTTP/1.1 connection (with the client's certificate when given, resuming `session` when given); `ask` sends a GET and resolves with the body of the answer, or `(closed)`. */
export async function keptAlive (t: Teardown, port: number, ca: string, client: { chain?: string, key?: string }, session?: Buffer): Promise<{ socket: tls.TLSSocket, closed: () => boolean, ask: (path?: string) => Promise<string> }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...(client.chain === undefined ? {} : { cert: client.chain, key: client.key }), ...(session === undefined ? {} : { session }) })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let closed = false
  socket.on('close', () => { closed = true })
  await once(socket, 'secureConnect')
  const ask = async (path = '/record'): Promise<string> => {
    if (closed) return '(closed)'
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
    const [chunk] = await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => ['(closed)'])]) as [Buffer | string]
    return String(chunk).split('\r\n\r\n')[1] ?? String(chunk)
  }
  return { socket, closed: () => closed, ask }
}

/** GET /record: what `app.mtls.connection()` says of the request's connection (`{ record: null }` for none). */
export function recordRoute (app: FastifyInstance, extra: (record: MtlsConnection) => Record<string, unknown> = () => ({})): void {
  app.get('/record', async request => {
    const record = app.mtls.connection(request.raw.socket)
    return record === null ? { record: null } : { verified: record.verified, refusal: record.refusal, ...extra(record) }
  })
}

export { beforeExpiry, pastExpiry } from 'mtls-test-support'

/**
 * A fastify-mtls server on 127.0.0.1 answering GET /verdict with the connection's record as fastify-mtls-identity
 * reads it (`verified`, `refusal`), and counting the requests its handler ran.
 */
export async function startVerdictServer (t: Teardown, tlsOptions: ServerTlsOptions, plugin: Omit<FastifyMtlsOptions, 'tls'>, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, port: number, handled: () => number }> {
  const serverTls = await loadServerTls(tlsOptions)
  let handled = 0
  const { app, port } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, ...plugin })
    app.get('/verdict', async request => {
      handled++
      const record = app.mtls.connection(request.raw.socket)
      return { verified: record?.verified ?? null, refusal: record?.refusal ?? null }
    })
  })
  return { app, port, handled: () => handled }
}

/** A distribution point whose answer the test changes at will. */
export async function pointServing (t: Teardown, first: (response: ServerResponse) => void): Promise<{ url: string, serve: (next: (response: ServerResponse) => void) => void, requests: () => number }> {
  let handler = first
  let requests = 0
  const server = createHttpServer((_, response) => { requests++; handler(response) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => { resolve() }) }) })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/ca.crl`, serve: next => { handler = next }, requests: () => requests }
}
