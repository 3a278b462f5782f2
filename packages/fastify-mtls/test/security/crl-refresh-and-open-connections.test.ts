// The attacks: a routine CRL refresh that revokes nothing closed every open connection whose intermediate came only
// in the client's TLS chain (the re-verification looked for CRL signers among the server's own CAs only), and a
// certificate revoked in its issuer's CRL shard kept its open connections whenever another shard was newer (the
// newest CRL of the issuer decided). Open connections are now judged from the record of what OpenSSL verified at
// their handshake: a refresh that revokes nothing keeps every one, one that revokes a certificate closes exactly
// that certificate's connections, HTTP/1.1, HTTP/2 and resumed sessions alike.
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import { join } from 'node:path'
import t from 'tap'
import { createRootCa, type CertificateAuthority, type IssuedCertificate } from 'mtls-pki'
import { startFastifyServer, tempDir, until, type Teardown } from 'mtls-test-support'
import { fastifyMtls, loadServerTls, type MtlsMode } from '../../src/index.js'
import { attempt, keptAlive, recordRoute, sessionFrom } from '../helpers.js'

interface Open { name: string, closed: () => boolean, ask: () => Promise<string> }

async function http1 (t: Teardown, name: string, port: number, ca: string, client: IssuedCertificate, session?: Buffer): Promise<Open> {
  const connection = await keptAlive(t, port, ca, client, session)
  if (session !== undefined && !connection.socket.isSessionReused()) throw new Error(`${name}: the session was not resumed`)
  return { name, closed: connection.closed, ask: async () => await connection.ask() }
}

// An HTTP/2 session that has had one request answered.
async function http2Session (t: Teardown, name: string, port: number, ca: string, client: IssuedCertificate): Promise<Open> {
  const session = http2.connect(`https://localhost:${port}`, { ca, cert: client.chain, key: client.key })
  t.teardown(() => session.destroy())
  session.on('error', () => {})
  let closed = false
  session.on('close', () => { closed = true })
  const ask = async (): Promise<string> => {
    if (closed) return '(closed)'
    return await new Promise(resolve => {
      const stream = session.request({ ':path': '/record' })
      let status = 0
      let body = ''
      stream.on('response', headers => { status = Number(headers[':status']) })
      stream.setEncoding('utf8').on('data', chunk => { body += chunk })
      stream.on('end', () => resolve(`HTTP/2 ${status} ${body}`))
      stream.on('error', () => resolve('(closed)'))
      stream.on('close', () => resolve('(closed)'))
    })
  }
  return { name, closed: () => closed, ask }
}

interface Mesh {
  root: CertificateAuthority
  clientCa: CertificateAuthority
  app: import('fastify').FastifyInstance
  port: number
  crlFile: string
  writeCrls: (crls: string[]) => Promise<void>
}

// A server of one intermediate trusting the root, whose clients come from another intermediate they send themselves:
// the server holds no copy of it. Its CRLs are the client intermediate's (`crls`), the root's and its own.
async function mesh (t: Teardown, mode: MtlsMode, clientCa: CertificateAuthority, root: CertificateAuthority, crls: string[]): Promise<Mesh> {
  const serverCa = await root.createIntermediate({ commonName: 'refresh server CA' })
  const server = await serverCa.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt'), crlFile: join(dir, 'crl.pem') }
  const own = [await root.createCrl(), await serverCa.createCrl()]
  await writeFile(files.certFile, server.chain)
  await writeFile(files.keyFile, server.key)
  await writeFile(files.caFile, root.certificate)
  await writeFile(files.crlFile, [...crls, ...own].join(''))
  const serverTls = await loadServerTls({ ...files, mode })
  const { app, port } = await startFastifyServer(t, { https: { ...serverTls.httpsOptions, allowHTTP1: true }, fastify: { http2: true } }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } })
    recordRoute(app)
  })
  const writeCrls = async (next: string[]): Promise<void> => {
    const before = app.mtls.stats().reloads.succeeded
    await writeFile(files.crlFile, [...next, await root.createCrl(), await serverCa.createCrl()].join(''))
    await until(() => app.mtls.stats().reloads.succeeded > before, 'the new CRLs applied')
  }
  return { root, clientCa, app, port, crlFile: files.crlFile, writeCrls }
}

async function openAll (t: Teardown, { port, root }: Mesh, clients: Array<[string, IssuedCertificate]>): Promise<Open[]> {
  const open: Open[] = []
  for (const [name, client] of clients) {
    open.push(await http1(t, `${name}, HTTP/1.1`, port, root.certificate, client))
    open.push(await http2Session(t, `${name}, HTTP/2`, port, root.certificate, client))
    open.push(await http1(t, `${name}, resumed`, port, root.certificate, client, await sessionFrom(port, client, root.certificate)))
  }
  return open
}

const VERIFIED = '{"verified":true,"refusal":null}'

t.test('a CRL refresh that revokes nothing keeps every open connection, with the intermediate the client sent', async t => {
  const root = await createRootCa({ commonName: 'refresh root' })
  const clientCa = await root.createIntermediate({ commonName: 'refresh client CA' })
  const clients = await Promise.all(['one', 'two'].map(async name => await clientCa.issue({ usage: 'client', spiffeId: `spiffe://mycompany.com/production/${name}` })))
  const server = await mesh(t, 'require', clientCa, root, [await clientCa.createCrl()])
  const open = await openAll(t, server, [['one', clients[0]!], ['two', clients[1]!]])
  for (const connection of open) t.match(await connection.ask(), VERIFIED, `${connection.name}: served before`)

  await server.writeCrls([await clientCa.createCrl()]) // the client CA's and the root's CRLs renewed, revoking nothing
  for (const connection of open) {
    t.equal(connection.closed(), false, `${connection.name}: still open`)
    t.match(await connection.ask(), VERIFIED, `${connection.name}: still served, verified`)
  }
  t.same(server.app.mtls.stats().failures, { ...server.app.mtls.stats().failures, revoked: 0, unknown_ca: 0, other: 0 }, 'nothing refused')
})

t.test('a CRL that revokes one certificate closes exactly that certificate\'s connections', async t => {
  for (const mode of ['require', 'optional'] as const) {
    const root = await createRootCa({ commonName: `revoking root ${mode}` })
    const clientCa = await root.createIntermediate({ commonName: 'revoking client CA' })
    const [doomed, kept] = await Promise.all(['doomed', 'kept'].map(async name => await clientCa.issue({ usage: 'client', spiffeId: `spiffe://mycompany.com/production/${name}` }))) as [IssuedCertificate, IssuedCertificate]
    const server = await mesh(t, mode, clientCa, root, [await clientCa.createCrl()])
    const open = await openAll(t, server, [['doomed', doomed], ['kept', kept]])
    clientCa.revoke(doomed, { reason: 'keyCompromise' })
    await server.writeCrls([await clientCa.createCrl()])
    for (const connection of open) {
      if (connection.name.startsWith('kept')) {
        t.equal(connection.closed(), false, `${mode}: ${connection.name}: still open`)
        t.match(await connection.ask(), VERIFIED, `${mode}: ${connection.name}: still served, verified`)
      } else if (mode === 'require') {
        await until(connection.closed, `${mode}: ${connection.name}: closed by the server`)
        t.pass(`${mode}: ${connection.name}: closed`)
      } else {
        t.match(await connection.ask(), '{"verified":false,"refusal":"CERT_REVOKED"}', `${mode}: ${connection.name}: served, its record says revoked`)
      }
    }
    if (mode === 'require') t.equal(server.app.mtls.stats().failures.revoked, 3, 'three connections closed as revoked')
    t.equal((await attempt(server.port, { ...doomed, ca: root.certificate }, {}, '/record')).status, mode === 'require' ? null : 200, `${mode}: a new handshake is OpenSSL's to judge`)
  }
})

t.test('a certificate revoked in its issuer\'s CRL shard loses its open connections, while a newer shard lists nothing of it', async t => {
  const root = await createRootCa({ commonName: 'shard root' })
  const clientCa = await root.createIntermediate({ commonName: 'shard client CA' })
  const [shardA, shardB] = ['http://crl.example/a.crl', 'http://crl.example/b.crl']
  const doomed = await clientCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/in-a', crlDistributionPoints: [shardA] })
  const kept = await clientCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/in-b', crlDistributionPoints: [shardB] })
  // Shard B signed after shard A: the newest CRL of the issuer lists nothing of the revoked certificate.
  const shards = async (): Promise<string[]> => [
    await clientCa.createCrl({ issuingDistributionPoint: shardA, thisUpdate: new Date(Date.now() - 60_000) }),
    await clientCa.createCrl({ issuingDistributionPoint: shardB, thisUpdate: new Date(Date.now() - 1000) })
  ]
  const server = await mesh(t, 'require', clientCa, root, await shards())
  const open = await openAll(t, server, [['in shard A', doomed], ['in shard B', kept]])
  clientCa.revoke(doomed)
  await server.writeCrls(await shards())
  for (const connection of open) {
    if (connection.name.startsWith('in shard B')) t.match(await connection.ask(), VERIFIED, `${connection.name}: still served`)
    else await until(connection.closed, `${connection.name}: closed`)
  }
  t.equal(server.app.mtls.stats().failures.revoked, 3, 'its three connections closed as revoked')
  t.equal((await attempt(server.port, { ...doomed, ca: root.certificate }, {}, '/record')).status, null, 'OpenSSL refuses its new handshakes (it reads the shard in scope)')
  t.equal((await attempt(server.port, { ...kept, ca: root.certificate }, {}, '/record')).status, 200, 'and takes the other\'s')
})
