// Rotation under load keeps stapling: new connections, each asking for a staple, while the server certificate is
// rotated (a new certificate with the OCSP URL, written, reload awaited) against the real OpenSSL responder that
// mtls-pki starts. undici-mtls with ocsp 'require' refuses any connection without a verified good staple; a raw
// node:tls loop checks each staple it is given itself, against the certificate that connection was served.
import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import { request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import type { PeerIdentity } from 'mtls-core'
import { verifyOcspResponse } from 'mtls-core/ocsp'
import { until } from 'mtls-test-support'
import { startServer, tempDir } from './helpers.js'

// Each rotation proves the same thing; a few, with connections opening across every one, are enough.
const ROTATIONS = 3
// New connections of each loop between two rotations (and after the last): the load each certificate serves.
const UNDICI_PER_ROUND = 12
const RAW_PER_ROUND = 4
// The bound on the load: the loops stop here whatever happened (a rotation that never ends then fails the test).
const MAX_CONNECTIONS = 3000

const root = await createRootCa({ commonName: 'rotation root' })
const intermediate = await root.createIntermediate({ commonName: 'rotation CA' })
const responder = await intermediate.startOcspResponder({ delegated: true })
t.teardown(responder.close)
const issuerDer = new X509Certificate(intermediate.certificate).raw

async function serverCert (): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ocspUrl: responder.url, mustStaple: true })
  await responder.refresh() // the responder answers for it from now on
  return cert
}

interface Probe {
  /** The certificate the connection was served (its fingerprint), or null when the handshake failed. */
  fingerprint256: string | null
  /** Whether the response to GET /whoami was a 200. */
  ok: boolean
  /** The staple's status for the certificate served, by mtls-core's verifyOcspResponse; or why there is none. */
  staple: string
}

/** One new node:tls connection asking for a staple (`requestOCSP`), one GET; the staple judged against the certificate served. */
async function probe (port: number, client: IssuedCertificate): Promise<Probe> {
  return await new Promise(resolve => {
    let stapled: Buffer | null = null
    let served: Buffer | null = null
    let data = ''
    // requestOCSP is a TLSSocket option that @types/node leaves out of tls.connect's.
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root.certificate, cert: client.chain, key: client.key, requestOCSP: true } as tls.ConnectionOptions)
    socket.on('OCSPResponse', (body: Buffer) => { stapled = body })
    socket.on('secureConnect', () => {
      served = socket.getPeerX509Certificate()?.raw ?? null
      socket.write('GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', chunk => { data += String(chunk) })
    socket.on('error', () => {})
    socket.on('close', () => {
      let staple = 'none'
      if (served !== null && stapled !== null) {
        try {
          staple = verifyOcspResponse(stapled, { certificate: served, issuer: issuerDer }).status
        } catch (err) {
          staple = `invalid: ${(err as Error).message}`
        }
      }
      resolve({ fingerprint256: served === null ? null : new X509Certificate(served).fingerprint256, ok: data.startsWith('HTTP/1.1 200'), staple })
    })
  })
}

t.test(`${ROTATIONS} rotations under new-connection load: every connection gets a verified good staple, 0 requests fail`, async t => {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  const first = await serverCert()
  await writeFile(files.certFile, first.chain)
  await writeFile(files.keyFile, first.key)
  await writeFile(files.caFile, root.certificate)
  const { app, port } = await startServer(t, { ...files, mode: 'require' }, { ocspStapling: true, watch: false })
  t.equal(app.mtls.status().ocsp?.status, 'good', 'the first certificate is stapled before the load starts')

  const client = await intermediate.issue({ commonName: 'load client', usage: 'client' })
  // The certificate each undici connection was served, as undici-mtls's server authorizer is shown it.
  const undiciServed = new Map<string, number>()
  const served = (identity: PeerIdentity): boolean => {
    undiciServed.set(identity.fingerprint256, (undiciServed.get(identity.fingerprint256) ?? 0) + 1)
    return true
  }
  // No session resumption: a resumed TLS 1.3 session carries no staple, and every connection must show one.
  const agent = await createMtlsAgent({ cert: client.chain, key: client.key, ca: root.certificate, server: served, ocsp: 'require', maxCachedSessions: 0, watch: false })
  t.teardown(() => agent.close())

  const control = { stop: false, connections: 0 }
  const results = { undici: { ok: 0, failed: [] as string[] }, raw: { ok: 0, failed: [] as string[], served: new Map<string, number>() } }
  const more = (): boolean => !control.stop && control.connections++ < MAX_CONNECTIONS
  const undiciLoop = async (): Promise<void> => {
    while (more()) {
      try {
        // reset: the connection closes after this request, so the next one makes a new handshake.
        const { statusCode, body } = await request(`https://localhost:${port}/whoami`, { dispatcher: agent, reset: true })
        await body.text()
        if (statusCode === 200) results.undici.ok++
        else results.undici.failed.push(`status ${statusCode}`)
      } catch (err) {
        results.undici.failed.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
    }
  }
  const rawLoop = async (): Promise<void> => {
    while (more()) {
      const seen = await probe(port, client)
      if (seen.ok && seen.staple === 'good' && seen.fingerprint256 !== null) {
        results.raw.ok++
        results.raw.served.set(seen.fingerprint256, (results.raw.served.get(seen.fingerprint256) ?? 0) + 1)
      } else {
        results.raw.failed.push(`${seen.fingerprint256 ?? 'no handshake'}: ${seen.ok ? '200' : 'no 200'}, staple ${seen.staple}`)
      }
    }
  }
  const handshakesBefore = app.mtls.stats().handshakes
  const loops = Promise.all([undiciLoop(), undiciLoop(), undiciLoop(), rawLoop()])
  const done = { undici: (): number => results.undici.ok + results.undici.failed.length, raw: (): number => results.raw.ok + results.raw.failed.length }
  // Load on each side of every rotation, however slow the machine: connections of both loops since the last one.
  const loadSince = async (what: string): Promise<void> => {
    const sent = { undici: done.undici(), raw: done.raw() }
    await until(() => done.undici() >= sent.undici + UNDICI_PER_ROUND && done.raw() >= sent.raw + RAW_PER_ROUND, what)
  }

  const certificates = [first]
  for (let round = 1; round <= ROTATIONS; round++) {
    await loadSince(`connections before rotation ${round}`)
    const next = await serverCert()
    await writeFile(files.certFile, next.chain)
    await writeFile(files.keyFile, next.key)
    const reloaded = await app.mtls.reload()
    t.same(reloaded, { changed: true, fingerprint256: next.fingerprint256 }, `rotation ${round} applied`)
    certificates.push(next)
    // The new certificate, served and stapled: new connections until one sees it with a good staple for it (the
    // first should: its handshake waits for the staple's fetch), a bounded number of them.
    const stapledNew = (seen: Probe): boolean => seen.fingerprint256 === next.fingerprint256 && seen.staple === 'good'
    let seen = await probe(port, client)
    for (let i = 0; i < 50 && !stapledNew(seen); i++) seen = await probe(port, client)
    t.match(seen, { fingerprint256: next.fingerprint256, ok: true, staple: 'good' }, `rotation ${round}: a new connection is served the new certificate with a good staple for it`)
    t.match(app.mtls.status().ocsp, { status: 'good', lastError: null }, `rotation ${round}: status().ocsp shows the new staple`)
  }
  await loadSince('connections after the last rotation')
  control.stop = true
  await loops

  t.same(results.undici.failed, [], 'no undici-mtls request failed (ocsp require: each connection had a verified good staple)')
  t.same(results.raw.failed, [], 'every node:tls connection was stapled a good response for the certificate it was served')
  const total = done.undici() + done.raw()
  t.ok(total < MAX_CONNECTIONS, `the rotations ended within the bound (${total} connections)`)
  const stats = app.mtls.stats()
  t.ok(stats.handshakes - handshakesBefore >= total, `each request had a connection of its own (${stats.handshakes - handshakesBefore} handshakes for ${total} requests)`)
  t.equal(stats.resumed, 0, 'no session was resumed: every handshake was a full one, with a certificate and its staple')
  t.same(Object.values(stats.failures).reduce((sum, n) => sum + n, 0), 0, 'no handshake failed')
  t.match(agent.status().ocsp, { mode: 'require', lastStaple: { status: 'good' }, lastError: null }, 'undici-mtls refused no staple')
  const last = certificates[certificates.length - 1] as IssuedCertificate
  t.ok((undiciServed.get(last.fingerprint256) ?? 0) > 0 && (results.raw.served.get(last.fingerprint256) ?? 0) > 0, 'both loops were served the last certificate')
  for (const [i, certificate] of certificates.entries()) {
    t.ok((undiciServed.get(certificate.fingerprint256) ?? 0) > 0, `the load was served certificate ${i} (${undiciServed.get(certificate.fingerprint256) ?? 0} undici connections, ${results.raw.served.get(certificate.fingerprint256) ?? 0} node:tls)`)
  }
  t.equal(app.mtls.status().ocsp?.status, 'good')
})
