// The server's OCSP staple, against real servers: `openssl s_server -status_file` stapling a response the test chose
// (made by the real `openssl ocsp` responder mtls-pki starts), and a fastify-mtls server with ocspStapling.
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { fetchOcspResponse, ocspRequest } from 'mtls-core/ocsp'
import { tempDir, until, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { MtlsClientError, createMtlsAgent, type MtlsAgentOptions } from '../src/index.js'
import { startServer } from './helpers.js'
import { createServer as createHttpsServer } from 'node:https'

const der = (pem: string): Buffer => new X509Certificate(pem).raw

const root = await createRootCa({ commonName: 'ocsp client root' })
const intermediate = await root.createIntermediate({ commonName: 'ocsp client CA' })
const responder = await intermediate.startOcspResponder({ delegated: true })
t.teardown(responder.close)
const client = await intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/order-service', usage: 'client' })
const clientOptions = { cert: client.chain, key: client.key, ca: root.certificate }

async function serverCert (mustStaple = false): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ocspUrl: responder.url, mustStaple })
  await responder.refresh()
  return cert
}

/** The response the real OpenSSL responder gives for `cert` now (good, or revoked once the CA revoked it). */
async function responseFor (cert: IssuedCertificate, from = responder, issuer = intermediate.certificate): Promise<Buffer> {
  return await fetchOcspResponse(from.url, ocspRequest(der(cert.certificate), der(issuer)).der)
}

async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise(resolve => probe.close(resolve))
  return port
}

/** `openssl s_server` with `cert`, stapling `staple` (or nothing), asking for our client certificate; its https URL. */
async function sServer (t: Teardown, cert: IssuedCertificate, staple: Buffer | null): Promise<string> {
  const dir = await tempDir(t)
  const files = { cert: join(dir, 'cert.pem'), chain: join(dir, 'chain.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'ca.pem'), staple: join(dir, 'staple.der') }
  await Promise.all([writeFile(files.cert, cert.certificate), writeFile(files.chain, intermediate.certificate), writeFile(files.key, cert.key), writeFile(files.ca, `${intermediate.certificate}${root.certificate}`)])
  if (staple !== null) await writeFile(files.staple, staple)
  const port = await freePort()
  const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', files.cert, '-cert_chain', files.chain, '-key', files.key,
    '-CAfile', files.ca, '-Verify', '1', '-tls1_3', '-www', '-quiet', ...(staple === null ? [] : ['-status_file', files.staple])], { stdio: ['pipe', 'ignore', 'pipe'] })
  let exited = false
  child.on('exit', () => { exited = true })
  t.teardown(async () => { if (!exited) { child.kill(); await new Promise(resolve => child.once('exit', resolve)) } })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += String(chunk) })
  let accepted = false
  const probe = (): void => { listening(port).then(ok => { if (ok) accepted = true; else if (!exited) setTimeout(probe, 10) }, () => {}) }
  probe()
  await until(() => exited || accepted, 'openssl s_server to accept')
  if (exited) throw new Error(`openssl s_server exited: ${stderr}`)
  return `https://127.0.0.1:${port}`
}

// A plain probe: s_server is listening once a TCP connection to it opens.
async function listening (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
    socket.on('error', () => { resolve(false) })
  })
}

async function get (t: Teardown, url: string, options: Partial<MtlsAgentOptions> = {}): Promise<{ statusCode: number, agent: Awaited<ReturnType<typeof createMtlsAgent>> } | { error: MtlsClientError, agent: Awaited<ReturnType<typeof createMtlsAgent>> }> {
  const agent = await createMtlsAgent({ ...clientOptions, ...options })
  t.teardown(() => agent.close())
  try {
    const response = await request(url, { dispatcher: agent })
    await response.body.text()
    return { statusCode: response.statusCode, agent }
  } catch (err) {
    return { error: err as MtlsClientError, agent }
  }
}

t.test('openssl s_server stapling a good response: the request goes through and status().ocsp shows the staple', async t => {
  const cert = await serverCert()
  const url = await sServer(t, cert, await responseFor(cert))
  const result = await get(t, url)
  t.same('statusCode' in result ? result.statusCode : result.error, 200)
  const { ocsp } = result.agent.status()
  t.equal(ocsp.mode, 'prefer', 'the default')
  t.match(ocsp.lastStaple, { origin: url, status: 'good' })
  t.ok((ocsp.lastStaple?.nextUpdate.getTime() ?? 0) > Date.now())
  t.ok((ocsp.lastStaple?.thisUpdate.getTime() ?? Infinity) <= Date.now())
  t.equal(ocsp.lastError, null)
  // A second new connection (no resumption) gets the same bytes: verified once, judged again.
  const agent = await createMtlsAgent({ ...clientOptions, maxCachedSessions: 0 })
  t.teardown(() => agent.close())
  for (let i = 0; i < 2; i++) await (await request(url, { dispatcher: agent, reset: true })).body.text()
  t.match(agent.status().ocsp, { lastStaple: { status: 'good' }, lastError: null })
})

t.test('openssl s_server stapling a revoked response: ERR_MTLS_SERVER_CERT_REVOKED, with the reason, in every mode that asks', async t => {
  const cert = await serverCert()
  intermediate.revoke(cert, { reason: 'keyCompromise' })
  await responder.refresh()
  const url = await sServer(t, cert, await responseFor(cert))
  for (const ocsp of ['prefer', 'require'] as const) {
    const result = await get(t, url, { ocsp })
    t.ok('error' in result && result.error instanceof MtlsClientError, ocsp)
    t.match('error' in result ? result.error : null, { code: 'ERR_MTLS_SERVER_CERT_REVOKED', message: /revoked \(keyCompromise\)/ })
    t.match(result.agent.status().ocsp, { mode: ocsp, lastStaple: { origin: url, status: 'revoked' }, lastError: { origin: url, code: 'ERR_MTLS_SERVER_CERT_REVOKED' } })
  }
  // 'off' asks for no staple: OpenSSL's verdict alone, as before (the certificate is not must-staple).
  const off = await get(t, url, { ocsp: 'off' })
  t.same('statusCode' in off ? off.statusCode : off.error, 200, "ocsp 'off' neither asks nor judges")
  t.same(off.agent.status().ocsp, { mode: 'off', lastStaple: null, lastError: null })
})

t.test('no staple: fine with prefer; refused with require, and for a must-staple certificate in every mode', async t => {
  const plain = await serverCert()
  const plainUrl = await sServer(t, plain, null)
  const preferred = await get(t, plainUrl)
  t.same('statusCode' in preferred ? preferred.statusCode : preferred.error, 200)
  t.same(preferred.agent.status().ocsp, { mode: 'prefer', lastStaple: null, lastError: null })
  const required = await get(t, plainUrl, { ocsp: 'require' })
  t.match('error' in required ? required.error : null, { code: 'ERR_MTLS_OCSP_STAPLE_MISSING', message: /requires one \(ocsp: 'require'\)/ })

  const mustStaple = await serverCert(true)
  const mustStapleUrl = await sServer(t, mustStaple, null)
  for (const ocsp of ['prefer', 'require', 'off'] as const) {
    const result = await get(t, mustStapleUrl, { ocsp })
    t.match('error' in result ? result.error : null, { code: 'ERR_MTLS_OCSP_STAPLE_MISSING' }, ocsp)
  }
  const off = await get(t, mustStapleUrl, { ocsp: 'off' })
  t.match('error' in off ? off.error : null, { message: /demands one \(TLS feature status_request, must-staple\); ocsp is 'off'/ })
})

t.test('forged staples are refused with ERR_MTLS_OCSP_INVALID and mtls-core\'s check as the cause', async t => {
  const cert = await serverCert(true)
  const other = await serverCert()
  const otherRoot = await createRootCa({ commonName: 'another root' })
  const otherCa = await otherRoot.createIntermediate({ commonName: 'another CA' })
  const otherResponder = await otherCa.startOcspResponder({ delegated: true })
  t.teardown(otherResponder.close)
  // A certificate of the right CA without id-kp-OCSPSigning signs the responses.
  const plainSigner = await intermediate.issue({ dnsNames: ['signer.example'], usage: 'server' })
  const undelegated = await intermediate.startOcspResponder({ signer: { certificate: plainSigner.certificate, key: plainSigner.key } })
  t.teardown(undelegated.close)
  const good = await responseFor(cert)
  const garbled = Buffer.from(good)
  const middle = Math.floor(garbled.length / 2)
  garbled[middle] = (garbled[middle] as number) ^ 0xff
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a good response for another certificate of the same CA', await responseFor(other), /cert-id|no SingleResponse/],
    ['a response signed by a certificate of the CA without OCSPSigning', await responseFor(cert, undelegated), /OCSP signing|OCSPSigning/],
    ['a response of another CA\'s responder, for the same request', await responseFor(cert, otherResponder), /issuer did not sign|neither/],
    ['garbled bytes', garbled, /refused/]
  ]
  for (const [what, staple, message] of cases) {
    const url = await sServer(t, cert, staple)
    const result = await get(t, url)
    const error = 'error' in result ? result.error : null
    t.match(error, { code: 'ERR_MTLS_OCSP_INVALID', message }, what)
    t.equal((error?.cause as { code?: string } | undefined)?.code, 'ERR_MTLS_OCSP_INVALID', `${what}: mtls-core's OcspError is the cause`)
  }
})

t.test('a Node server stapling bytes that are no OCSP response (s_server will not send them) is refused', async t => {
  const cert = await serverCert()
  const server = createHttpsServer({ cert: cert.chain, key: cert.key, ca: root.certificate, requestCert: true }, (_request, response) => { response.end('ok') })
  server.on('OCSPRequest', (_certificate: Buffer, _issuer: Buffer, callback: (err: null, response: Buffer) => void) => { callback(null, Buffer.from('hello')) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const result = await get(t, `https://127.0.0.1:${(server.address() as AddressInfo).port}`)
  const error = 'error' in result ? result.error : null
  t.match(error, { code: 'ERR_MTLS_OCSP_INVALID', message: /not an OCSPResponse/ })
  t.match(error?.cause, { code: 'ERR_MTLS_OCSP_INVALID', check: 'malformed' })
})

t.test('fastify-mtls stapling: HTTP/1.1 and HTTP/2 connections see a good staple; a resumed session needs none', async t => {
  const cert = await serverCert(true)
  const { url, app } = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate }, {}, { ocspStapling: true })
  t.equal(app.mtls.status().ocsp?.status, 'good', 'the server staples')
  for (const allowH2 of [false, true]) {
    const agent = await createMtlsAgent({ ...clientOptions, ocsp: 'require', agent: { allowH2 } })
    t.teardown(() => agent.close())
    const first = await request(`${url}/whoami`, { dispatcher: agent })
    t.equal(first.statusCode, 200, allowH2 ? 'h2' : 'http/1.1')
    t.match(await first.body.json(), { resumed: false })
    t.match(agent.status().ocsp, { mode: 'require', lastStaple: { origin: url, status: 'good' }, lastError: null })
  }
  // A new connection resumes the session (TLS 1.3 sends no staple then): it was checked when it was made.
  const resuming = await createMtlsAgent({ ...clientOptions, ocsp: 'require', agent: { pipelining: 0 } })
  t.teardown(() => resuming.close())
  await (await request(`${url}/whoami`, { dispatcher: resuming, reset: true })).body.json()
  const staple = resuming.status().ocsp.lastStaple
  const second = await request(`${url}/whoami`, { dispatcher: resuming, reset: true })
  t.match(await second.body.json(), { resumed: true }, 'the second connection resumed')
  t.equal(resuming.status().ocsp.lastStaple, staple, 'no new staple was seen')
  t.equal(resuming.status().ocsp.lastError, null)
})

t.test('fastify-mtls serves no revoked staple: a must-staple server whose certificate is revoked is refused as unstapled', async t => {
  const cert = await serverCert(true)
  intermediate.revoke(cert, { reason: 'superseded' })
  await responder.refresh()
  const { url, app } = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate }, {}, { ocspStapling: { failMode: 'open' } })
  t.equal(app.mtls.status().ocsp?.status, null, 'the server holds no staple')
  const result = await get(t, `${url}/whoami`)
  t.match('error' in result ? result.error : null, { code: 'ERR_MTLS_OCSP_STAPLE_MISSING', message: /must-staple/ })
})
