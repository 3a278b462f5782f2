// Attack: an identity is checked against its leaf's notAfter on every request, but against nothing else the
// handshake verified. A client whose certificate is revoked (the CRL reloaded) keeps its identity on the
// HTTP/1.1 or HTTP/2 connection it already holds, for as long as it keeps that connection open; a client
// whose issuing intermediate has expired keeps its identity on a kept-alive or resumed connection.
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import * as http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type MtlsMode, type ServerTlsOptions } from 'fastify-mtls'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { Agent, request } from 'undici'
import { hangLimit, until } from 'mtls-test-support'
import { fastifyMtlsIdentity } from '../../src/index.js'
import { beforeExpiry, pastExpiry } from '../helpers.js'

// Three of these wait for an expiry, each on servers of its own: side by side, the waits overlap.
t.jobs = 3

interface Who { id: string | null, error: string | null }

async function serve (t: { teardown: (fn: () => unknown) => void }, options: ServerTlsOptions, http2Enabled = false): Promise<{ app: FastifyInstance, port: number }> {
  const serverTls = await loadServerTls(options)
  const app = Fastify({ https: { ...serverTls.httpsOptions, allowHTTP1: true }, http2: http2Enabled } as never) as unknown as FastifyInstance
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  await app.register(fastifyMtlsIdentity)
  app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, port: (app.server.address() as AddressInfo).port }
}

async function h2Who (session: http2.ClientHttp2Session): Promise<Who> {
  const stream = session.request({ ':path': '/who' })
  let body = ''
  stream.setEncoding('utf8')
  stream.on('data', chunk => { body += chunk })
  await once(stream, 'end')
  return JSON.parse(body) as Who
}

for (const mode of ['optional', 'require'] as const) {
  t.test(`a revoked client loses its identity on the connections it already holds (${mode} mode)`, async t => {
    const root = await createRootCa({ commonName: 'revocation test root' })
    const intermediate = await root.createIntermediate({ commonName: 'revocation test intermediate' })
    const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
    const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/compromised' })
    const dir = await mkdtemp(join(tmpdir(), 'review-revocation-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const crlFile = join(dir, 'crl.pem')
    await writeFile(crlFile, (await intermediate.createCrls()).join(''))
    const { app, port } = await serve(t, { cert: server.chain, key: server.key, ca: root.certificate, crlFile, mode }, true)
    const url = `https://127.0.0.1:${port}`

    const agent = new Agent({ connect: { ca: root.certificate, servername: 'localhost', cert: client.chain, key: client.key }, keepAliveTimeout: hangLimit(30_000) })
    t.teardown(() => agent.close())
    let connections = 0
    agent.on('connect', () => { connections++ })
    const h1 = async (): Promise<Who> => await (await request(`${url}/who`, { dispatcher: agent })).body.json() as Who
    const session = http2.connect(url, { ca: root.certificate, servername: 'localhost', cert: client.chain, key: client.key })
    session.on('error', () => {})
    t.teardown(() => session.close())
    t.equal((await h1()).id, 'spiffe://mycompany.com/production/compromised')
    t.equal((await h2Who(session)).id, 'spiffe://mycompany.com/production/compromised')

    intermediate.revoke(client, { reason: 'keyCompromise' })
    await writeFile(crlFile, (await intermediate.createCrls()).join(''))
    await app.mtls.reload()
    t.equal(app.mtls.status().crls.some(crl => crl.revokedCount === 1), true, 'the CRL revoking the client is in force')

    if (mode === 'optional') {
      // Optional mode leaves connections to the routes: the identity is verified again on the next request.
      const kept = await h1()
      t.equal(connections, 1, 'the same kept-alive HTTP/1.1 connection')
      t.same(kept, { id: null, error: 'CERT_REVOKED' }, 'HTTP/1.1 keep-alive: no identity after the revocation')
      t.same(await h2Who(session), { id: null, error: 'CERT_REVOKED' }, 'HTTP/2: no identity after the revocation')
    } else {
      // Require mode closes them at the reload: nothing more arrives on them, and a new one is refused.
      await t.rejects(h1(), 'HTTP/1.1: the kept-alive connection is closed, a new one refused at the handshake')
      await until(() => session.closed || session.destroyed, 'the HTTP/2 session closed')
      t.pass('HTTP/2: the session is closed')
      t.ok(app.mtls.stats().failures.revoked >= 1, 'counted as revoked')
    }
  })
}

t.test('an identity ends when the intermediate that issued it expires (kept alive or resumed)', async t => {
  const root = await createRootCa({ commonName: 'intermediate expiry root' })
  const serverCa = await root.createIntermediate({ commonName: 'server CA' })
  const server = await serverCa.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const mode: MtlsMode = 'optional'
  const idle = hangLimit(30_000) // kept alive while the test waits for the expiry: only a hang reaches it
  const { port, client, h1, before, ticket, expiry } = await beforeExpiry(t, async notAfter => {
    const shortCa = await root.createIntermediate({ commonName: 'short-lived client CA', notBefore: new Date(Date.now() - 60_000), notAfter })
    const client: IssuedCertificate = await shortCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job' })
    const { port } = await serve(t, { cert: server.chain, key: server.key, ca: root.certificate, mode })
    const agent = new Agent({ connect: { ca: root.certificate, servername: 'localhost', cert: client.chain, key: client.key }, keepAliveTimeout: idle, keepAliveMaxTimeout: idle })
    t.teardown(() => agent.close())
    const h1 = async (): Promise<Who> => await (await request(`https://127.0.0.1:${port}/who`, { dispatcher: agent })).body.json() as Who
    const before = await h1()
    const first = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root.certificate, cert: client.chain, key: client.key })
    let ticket: Buffer | undefined
    first.on('session', s => { ticket = s })
    first.on('secureConnect', () => first.end('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
    first.resume()
    await once(first, 'close')
    return { port, client, h1, before, ticket }
  })
  t.equal(before.id, 'spiffe://mycompany.com/production/batch-job')

  await pastExpiry(expiry)
  // This got through before the fix: the kept-alive connection still answers { id: 'spiffe://…/batch-job', error: null }: only the
  // leaf's notAfter is checked (plugin.ts resolve()), not the chain's.
  t.equal((await h1()).id, null, 'kept alive past the intermediate\'s expiry: no identity')

  const resumed = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root.certificate, cert: client.chain, key: client.key, session: ticket })
  let reused = false
  let answer = ''
  resumed.on('secureConnect', () => { reused = resumed.isSessionReused(); resumed.write('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n') })
  resumed.on('data', chunk => { answer += String(chunk) })
  await once(resumed, 'close')
  t.ok(reused, 'a resumed session')
  // This got through before the fix: the resumed session has the identity too.
  t.match(answer, /"id":null/, 'which has no identity either')
})

t.test('an HTTP/2 session kept open past its client certificate\'s notAfter has no identity (refused correctly)', async t => {
  const root = await createRootCa({ commonName: 'h2 expiry root' })
  const intermediate = await root.createIntermediate({ commonName: 'h2 expiry intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const { session, before, expiry } = await beforeExpiry(t, async notAfter => {
    const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job', notBefore: new Date(Date.now() - 60_000), notAfter })
    const { port } = await serve(t, { cert: server.chain, key: server.key, ca: root.certificate, mode: 'require' }, true)
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: root.certificate, servername: 'localhost', cert: client.chain, key: client.key })
    session.on('error', () => {}) // a session refused (a setup past the expiry) fails its stream
    t.teardown(() => session.close())
    return { session, before: await h2Who(session) }
  })
  t.equal(before.id, 'spiffe://mycompany.com/production/batch-job')
  await pastExpiry(expiry)
  t.same(await h2Who(session), { id: null, error: 'CERT_HAS_EXPIRED' }, 'the same HTTP/2 session, after notAfter')
})

t.test('a CA:TRUE client leaf has no identity on a resumed session in optional mode (refused correctly)', async t => {
  const root = await createRootCa({ commonName: 'ca leaf root' })
  const intermediate = await root.createIntermediate({ commonName: 'ca leaf intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const caLeaf = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/admin', isCa: true })
  const { port } = await serve(t, { cert: server.chain, key: server.key, ca: root.certificate, mode: 'optional' })
  const connect = async (session?: Buffer): Promise<{ ticket?: Buffer, reused: boolean, answer: string }> => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root.certificate, cert: caLeaf.chain, key: caLeaf.key, ...(session === undefined ? {} : { session }) })
    const result: { ticket?: Buffer, reused: boolean, answer: string } = { reused: false, answer: '' }
    socket.on('session', s => { result.ticket = s })
    socket.on('secureConnect', () => { result.reused = socket.isSessionReused(); socket.write('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n') })
    socket.on('data', chunk => { result.answer += String(chunk) })
    await once(socket, 'close')
    return result
  }
  const first = await connect()
  t.match(first.answer, /"id":null/, 'full handshake: no identity')
  const resumed = await connect(first.ticket)
  t.ok(resumed.reused)
  t.match(resumed.answer, /"id":null/, 'resumed: no identity')
})

t.test('a connection whose first request came while the CRLs were past their next update has its identity once they are renewed', async t => {
  const root = await createRootCa({ commonName: 'renewed CRL root' })
  const intermediate = await root.createIntermediate({ commonName: 'renewed CRL intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/patient' })
  const material = { cert: server.chain, key: server.key, ca: root.certificate }
  const { serverTls, socket, expiry } = await beforeExpiry(t, async nextUpdate => {
    const serverTls = await loadServerTls({ ...material, crl: (await intermediate.createCrls({ nextUpdate })).join('') })
    const app = Fastify({ https: serverTls.httpsOptions })
    await app.register(fastifyMtls, { tls: serverTls, watch: false })
    await app.register(fastifyMtlsIdentity)
    app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    // The connection is made now (OpenSSL verifies it while the CRLs are current); its first request waits for them to fall due.
    const accepted = new Promise((resolve, reject) => { app.server.once('secureConnection', resolve).once('tlsClientError', reject) })
    const socket = tls.connect({ host: '127.0.0.1', port: (app.server.address() as AddressInfo).port, servername: 'localhost', ca: root.certificate, cert: client.chain, key: client.key })
    t.teardown(() => socket.destroy())
    await Promise.all([once(socket, 'secureConnect'), accepted])
    return { serverTls, socket }
  })
  const who = async (): Promise<Who> => {
    socket.write('GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const [chunk] = await once(socket, 'data') as [Buffer]
    return JSON.parse(String(chunk).split('\r\n\r\n')[1] ?? '') as Who
  }
  await pastExpiry(expiry)
  t.same(await who(), { id: null, error: 'CRL_HAS_EXPIRED' }, 'past their next update: no identity')
  await serverTls.source.reload({ ...material, crl: (await intermediate.createCrls()).join('') })
  t.same(await who(), { id: 'spiffe://mycompany.com/production/patient', error: null }, 'renewed: the same connection has its identity')
})
