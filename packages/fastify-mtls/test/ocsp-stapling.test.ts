// OCSP stapling, judged by foreign clients (curl --cert-status, openssl s_client -status) and Node's own, against the
// real OpenSSL responder that mtls-pki starts.
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { promisify } from 'node:util'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { verifyOcspResponse } from 'mtls-core/ocsp'
import { until } from 'mtls-test-support'
import { capturedLogger, startServer, tempDir, type Teardown } from './helpers.js'

const run = promisify(execFile)
const der = (pem: string): Buffer => new X509Certificate(pem).raw

const root = await createRootCa({ commonName: 'stapling root' })
const intermediate = await root.createIntermediate({ commonName: 'stapling CA' })
const responder = await intermediate.startOcspResponder({ delegated: true })
t.teardown(responder.close)

async function serverCert (ocspUrl = responder.url, mustStaple = true): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ocspUrl, mustStaple })
  await responder.refresh() // the responder answers for it from now on
  return cert
}

async function start (t: Teardown, cert: IssuedCertificate, ocspStapling: unknown, logger?: unknown): Promise<Awaited<ReturnType<typeof startServer>>> {
  return await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { ocspStapling: ocspStapling as true }, logger === undefined ? {} : { logger })
}

/** What Node's TLS client is stapled (`requestOCSP`), or null. */
async function stapled (port: number): Promise<Buffer | null> {
  return await new Promise((resolve, reject) => {
    let response: Buffer | null = null
    // requestOCSP is a TLSSocket option that @types/node leaves out of tls.connect's.
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root.certificate, requestOCSP: true } as tls.ConnectionOptions)
    socket.on('OCSPResponse', (body: Buffer) => { response = body })
    socket.on('secureConnect', () => { socket.end() })
    socket.on('error', reject)
    socket.on('close', () => { resolve(response) })
  })
}

async function curl (t: Teardown, port: number): Promise<{ ok: boolean, stderr: string }> {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'ca.pem'), root.certificate)
  try {
    await run('curl', ['-sS', '--cert-status', '--cacert', join(dir, 'ca.pem'), '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/whoami`])
    return { ok: true, stderr: '' }
  } catch (err) {
    return { ok: false, stderr: (err as { stderr: string }).stderr }
  }
}

async function sClient (t: Teardown, port: number): Promise<string> {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'ca.pem'), root.certificate)
  const { stdout } = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -servername localhost -status -CAfile ${join(dir, 'ca.pem')} < /dev/null`])
  return stdout
}

t.test('a good staple: status().ocsp, Node, openssl s_client -status and curl --cert-status all see it', async t => {
  const cert = await serverCert()
  const { app, port } = await start(t, cert, true)
  const ocsp = app.mtls.status().ocsp
  t.equal(ocsp?.status, 'good')
  t.equal(ocsp?.url, responder.url)
  t.ok((ocsp?.nextUpdate?.getTime() ?? 0) > Date.now())
  t.equal(ocsp?.lastError, null)
  t.ok((ocsp?.nextFetchAt?.getTime() ?? 0) < (ocsp?.nextUpdate?.getTime() ?? 0), 'refreshed before nextUpdate')

  const response = await stapled(port)
  t.ok(response !== null)
  t.equal(verifyOcspResponse(response as Buffer, { certificate: der(cert.certificate), issuer: der(intermediate.certificate) }).status, 'good')
  t.match(await sClient(t, port), /OCSP Response Status: successful[\s\S]*Cert Status: good/)
  t.same(await curl(t, port), { ok: true, stderr: '' })
  t.equal(await app.mtls.healthCheck(), true)
})

t.test('a revoked certificate is not stapled: failMode closed fails ready(), open serves without a staple that curl misses', async t => {
  const cert = await serverCert()
  intermediate.revoke(cert, { reason: 'keyCompromise' })
  await responder.refresh()
  await t.rejects(start(t, cert, true), { code: 'FST_MTLS_OCSP_UNAVAILABLE', message: /revoked \(keyCompromise\)/ })

  const logger = capturedLogger()
  const { app, port } = await start(t, cert, { failMode: 'open' }, logger.logger)
  t.equal(app.mtls.status().ocsp?.status, null)
  t.match(app.mtls.status().ocsp?.lastError, { code: 'ERR_MTLS_OCSP_NOT_GOOD', message: /revoked/ })
  t.equal(await stapled(port), null)
  const seen = await curl(t, port)
  t.equal(seen.ok, false)
  t.match(seen.stderr, /OCSP|status/i)
  t.match(await sClient(t, port), /OCSP response: no response sent/)
  t.equal(await app.mtls.healthCheck(), true, 'failMode open keeps the health check')
  t.equal(logger.lines.filter(line => /OCSP staple not refreshed/.test(String(line.msg))).length, 1, 'one warning for the state, not one per attempt')
})

t.test('a responder that is down or does not answer: no staple, a coded error, and retries with backoff', async t => {
  const closed = createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const downPort = (closed.address() as { port: number }).port
  await new Promise<void>(resolve => closed.close(() => { resolve() }))
  const cert = await serverCert(`http://127.0.0.1:${downPort}/`)
  await t.rejects(start(t, cert, true), { code: 'FST_MTLS_OCSP_UNAVAILABLE', message: /cannot fetch/ })

  // A responder that accepts and never answers: the fetch times out.
  const silent = createServer(() => {})
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.close(); silent.unref() })
  const slowCert = await serverCert(`http://127.0.0.1:${(silent.address() as { port: number }).port}/`)
  const { app } = await start(t, slowCert, { failMode: 'open', timeoutMs: 200 })
  t.match(app.mtls.status().ocsp, { status: null, lastError: { code: 'ERR_MTLS_OCSP_FETCH', message: /no answer within 200 ms/ } })
  const firstRetry = app.mtls.status().ocsp?.nextFetchAt?.getTime() ?? 0
  await until(() => (app.mtls.status().ocsp?.nextFetchAt?.getTime() ?? 0) > firstRetry, 'a second attempt')
  const gap = (app.mtls.status().ocsp?.nextFetchAt?.getTime() ?? 0) - (app.mtls.status().ocsp?.lastError?.at.getTime() ?? 0)
  t.ok(gap >= 1500, `the second retry waits longer than the first (${gap} ms)`)
  t.equal(await app.mtls.healthCheck(), true)
})

t.test('a responder that comes back: the staple is fetched on a retry, and one line says it is in force again', async t => {
  const ca = await root.createIntermediate({ commonName: 'returning CA' })
  const first = await ca.startOcspResponder()
  const port = first.port
  await first.close()
  const cert = await ca.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ocspUrl: `http://127.0.0.1:${port}/` })
  const logger = capturedLogger()
  const { app } = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { ocspStapling: { failMode: 'open' } }, { logger: logger.logger })
  t.equal(app.mtls.status().ocsp?.status, null)
  t.equal(await app.mtls.healthCheck(), true)
  const back = await ca.startOcspResponder({ port })
  t.teardown(back.close)
  await until(() => app.mtls.status().ocsp?.status === 'good', 'the staple after the responder came back')
  t.equal(app.mtls.status().ocsp?.lastError, null)
  t.ok(logger.lines.some(line => line.msg === 'OCSP staple in force'))
})

t.test('refreshBefore: a staple is fetched again that long before its nextUpdate', async t => {
  const cert = await serverCert()
  // The whole hour of the response: due again at once (one second on, the least wait).
  const { app } = await start(t, cert, { refreshBefore: 60 * 60_000 })
  const firstFetchAt = app.mtls.status().ocsp?.nextFetchAt?.getTime() ?? 0
  t.ok(firstFetchAt - Date.now() <= 1000)
  await until(() => (app.mtls.status().ocsp?.nextFetchAt?.getTime() ?? 0) > firstFetchAt, 'a refresh')
  t.equal(app.mtls.status().ocsp?.status, 'good')
})

t.test('the url option overrides the certificate\'s, and a certificate without one needs it', async t => {
  const cert = await serverCert('http://127.0.0.1:1/', false)
  const { app, port } = await start(t, cert, { url: responder.url })
  t.equal(app.mtls.status().ocsp?.status, 'good')
  t.not(await stapled(port), null)
  const bare = await intermediate.issue({ dnsNames: ['localhost'], usage: 'server' })
  await t.rejects(start(t, bare, true), { code: 'FST_MTLS_OCSP_UNAVAILABLE', message: /names no OCSP responder/ })
})

t.test('the new certificate is stapled from its first handshake after a rotation', async t => {
  const dir = await tempDir(t)
  const first = await serverCert()
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') }
  await writeFile(files.certFile, first.chain)
  await writeFile(files.keyFile, first.key)
  await writeFile(files.caFile, root.certificate)
  const { app, port } = await startServer(t, { ...files, mode: 'optional' }, { ocspStapling: true, watch: false })
  // A change of the CA file alone keeps the certificate and its staple.
  const before = app.mtls.status().ocsp?.thisUpdate
  await writeFile(files.caFile, root.certificate + '\n')
  t.equal((await app.mtls.reload()).changed, true)
  t.same(app.mtls.status().ocsp?.thisUpdate, before)
  // The new certificate's responder answers after 300 ms: the first handshake waits for it rather than go unstapled.
  const delayed = createServer(socket => {
    socket.pause()
    setTimeout(() => {
      const upstream = connect(responder.port, '127.0.0.1')
      socket.pipe(upstream).pipe(socket)
    }, 300)
  })
  await new Promise<void>(resolve => delayed.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { delayed.close() })
  const second = await serverCert(`http://127.0.0.1:${(delayed.address() as { port: number }).port}/`)
  await writeFile(files.certFile, second.chain)
  await writeFile(files.keyFile, second.key)
  await app.mtls.reload()
  t.equal(app.mtls.status().ocsp?.status, null, 'the fetch for the new certificate is under way')
  const response = await stapled(port)
  t.equal(verifyOcspResponse(response as Buffer, { certificate: der(second.certificate), issuer: der(intermediate.certificate) }).status, 'good')
  t.equal(app.mtls.status().ocsp?.status, 'good')
})

t.test('wrong ocspStapling options fail ready() with FST_MTLS_INVALID_OPTION', async t => {
  const cert = await serverCert()
  for (const [value, message] of [
    ['yes', /ocspStapling must be true, false or/],
    [{ failMode: 'maybe' }, /failMode must be 'closed' or 'open'/],
    [{ url: 'not a url' }, /url must be a URL/],
    [{ refreshBefore: -1 }, /refreshBefore must be/],
    [{ timeoutMs: 0 }, /timeoutMs must be/],
    [{ refreshBfore: 1 }, /unknown option "refreshBfore" \(did you mean "refreshBefore"\?\)/]
  ] as Array<[unknown, RegExp]>) {
    await t.rejects(start(t, cert, value), { code: 'FST_MTLS_INVALID_OPTION', message }, JSON.stringify(value))
  }
  const { app } = await start(t, cert, false)
  t.equal(app.mtls.status().ocsp, null)
})
