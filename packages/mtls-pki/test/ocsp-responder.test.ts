// The development OCSP responder is OpenSSL's own; OpenSSL's OCSP client (`openssl ocsp -issuer -cert -url`) judges
// what it answers. Issued certificates carry the responder's URL, CRL distribution points and must-staple as asked.
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createRootCa, PkiError, type CertificateAuthority, type OcspResponder } from '../src/index.js'
import { indexText } from '../src/ocsp-responder.js'
import { EXIT } from '../src/cli.js'
import { cli, tempDir, usageError } from './cli-harness.js'

const run = promisify(execFile)

const root = await createRootCa({ commonName: 'OCSP test root' })
const intermediate = await root.createIntermediate({ commonName: 'OCSP test issuing CA' })

/** What `openssl ocsp` as a client says of `certificate`: its verdict on the response (stderr), then the status and details. */
async function ask (t: { teardown: (fn: () => unknown) => void }, responder: OcspResponder, issuer: CertificateAuthority, certificate: string, extra: string[] = []): Promise<string> {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'issuer.pem'), issuer.certificate)
  await writeFile(join(dir, 'cert.pem'), certificate)
  await writeFile(join(dir, 'trust.pem'), issuer.root.certificate + issuer.chain)
  // A refused response makes openssl exit 1: its words are the verdict all the same.
  const { stdout, stderr } = await run('openssl', ['ocsp', '-issuer', join(dir, 'issuer.pem'), '-cert', join(dir, 'cert.pem'), '-url', responder.url,
    '-CAfile', join(dir, 'trust.pem'), ...extra]).catch((err: { stdout: string, stderr: string }) => err)
  return `${stderr}\n${stdout}`
}

t.test('issue writes authorityInfoAccess (OCSP), cRLDistributionPoints and must-staple, as OpenSSL reads them', async t => {
  const cert = await intermediate.issue({ dnsNames: ['a.example'], ocspUrl: 'http://127.0.0.1:8080/', crlDistributionPoints: ['http://crl.example/a.crl'], mustStaple: true })
  t.equal(cert.ocspUrl, 'http://127.0.0.1:8080/')
  t.equal(cert.mustStaple, true)
  const dir = await tempDir(t)
  await writeFile(join(dir, 'cert.pem'), cert.certificate)
  const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-text'])
  t.match(stdout, /Authority Information Access:\s+OCSP - URI:http:\/\/127\.0\.0\.1:8080\//)
  t.match(stdout, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/crl\.example\/a\.crl/)
  t.match(stdout, /TLS Feature:\s+status_request/)
  const { stdout: url } = await run('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-ocsp_uri'])
  t.equal(url.trim(), 'http://127.0.0.1:8080/')

  const plain = await intermediate.issue({ dnsNames: ['b.example'] })
  t.equal(plain.ocspUrl, null)
  t.equal(plain.mustStaple, false)
  await writeFile(join(dir, 'plain.pem'), plain.certificate)
  const { stdout: plainText } = await run('openssl', ['x509', '-in', join(dir, 'plain.pem'), '-noout', '-text'])
  t.notMatch(plainText, /Authority Information Access|TLS Feature/)
})

t.test('the CLI issues with --ocsp-url and --must-staple, and inspect shows both', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('issue', 'web', '--dir', dir, '--server', '--dns', 'localhost', '--ocsp-url', 'http://127.0.0.1:8888/', '--must-staple')).code, EXIT.ok)
  const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'web.pem'), '-noout', '-text'])
  t.match(stdout, /OCSP - URI:http:\/\/127\.0\.0\.1:8888\/[\s\S]*TLS Feature:\s+status_request|TLS Feature:\s+status_request[\s\S]*OCSP - URI:http:\/\/127\.0\.0\.1:8888\//)
  const inspected = await cli('inspect', join(dir, 'web.pem'))
  t.match(inspected.stdout, /\n {2}OCSP: +http:\/\/127\.0\.0\.1:8888\/\n/)
  t.match(inspected.stdout, /\n {2}must-staple: +yes/)
  t.equal((await cli('issue', 'plain', '--dir', dir)).code, EXIT.ok)
  t.notMatch((await cli('inspect', join(dir, 'plain.pem'))).stdout, /OCSP|must-staple/)
  t.same(await cli('issue', 'web', '--dir', dir, '--ocsp-url', 'ocsp.example'), { code: EXIT.usage, stdout: '', stderr: usageError('issue', '--ocsp-url "ocsp.example" is not a URL (http://127.0.0.1:8888/)') })
})

t.test('a wrong ocspUrl or mustStaple is refused, naming the option', async t => {
  await t.rejects(intermediate.issue({ ocspUrl: 'not a url' }), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: /issue: ocspUrl: "not a url" is not a URI/ })
  await t.rejects(intermediate.issue({ mustStaple: 'yes' as unknown as boolean }), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: /mustStaple must be true or false/ })
  await t.rejects(intermediate.issue({ ocspURL: 'http://x/' } as never), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: /did you mean "ocspUrl"/ })
})

t.test('the responder answers good, revoked (with its reason, also for a revocation after it started) and unknown', async t => {
  const ca = await root.createIntermediate({ commonName: 'revoking CA' })
  const good = await ca.issue({ dnsNames: ['good.example'] })
  const revokedEarly = await ca.issue({ dnsNames: ['early.example'] })
  ca.revoke(revokedEarly, { reason: 'keyCompromise' })
  const responder = await ca.startOcspResponder()
  t.teardown(responder.close)
  t.match(responder.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  t.not(responder.port, 0)

  const stranger = await (await root.createIntermediate({ commonName: 'revoking CA' })).issue({ dnsNames: ['stranger.example'] })
  const late = await ca.issue({ dnsNames: ['late.example'] })
  // `late` was issued after the responder started: the refresh that revoke() starts, or this one, writes it in.
  await responder.refresh()

  t.match(await ask(t, responder, ca, good.certificate), /Response verify OK[\s\S]*cert\.pem: good/)
  t.match(await ask(t, responder, ca, revokedEarly.certificate), /cert\.pem: revoked[\s\S]*Reason: keyCompromise/)
  t.match(await ask(t, responder, ca, stranger.certificate), /cert\.pem: unknown/)
  t.match(await ask(t, responder, ca, late.certificate), /cert\.pem: good/)

  ca.revoke(late, { reason: 'superseded' })
  await responder.refresh()
  t.match(await ask(t, responder, ca, late.certificate), /cert\.pem: revoked[\s\S]*Reason: superseded/)
  // A serial alone is enough; the responder still answers for it.
  ca.revoke(good.serialNumber)
  await responder.refresh()
  t.match(await ask(t, responder, ca, good.certificate), /cert\.pem: revoked[\s\S]*Reason: unspecified/)
})

t.test('nextUpdate is thisUpdate plus nextUpdateMinutes', async t => {
  const cert = await intermediate.issue({ dnsNames: ['next.example'] })
  const responder = await intermediate.startOcspResponder({ nextUpdateMinutes: 3 })
  t.teardown(responder.close)
  const text = await ask(t, responder, intermediate, cert.certificate, ['-resp_text'])
  const thisUpdate = /This Update: (.+)/.exec(text)?.[1] as string
  const nextUpdate = /Next Update: (.+)/.exec(text)?.[1] as string
  t.equal(Date.parse(nextUpdate) - Date.parse(thisUpdate), 3 * 60_000)
})

t.test('a delegated responder signs with a certificate of its own, issued by the CA for id-kp-OCSPSigning', async t => {
  const cert = await intermediate.issue({ dnsNames: ['delegated.example'] })
  const responder = await intermediate.startOcspResponder({ delegated: true })
  t.teardown(responder.close)
  t.not(responder.signerCertificate, intermediate.certificate)
  const dir = await tempDir(t)
  await writeFile(join(dir, 'signer.pem'), responder.signerCertificate)
  const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'signer.pem'), '-noout', '-text'])
  t.match(stdout, /X509v3 Extended Key Usage:\s+OCSP Signing/)
  t.match(stdout, /Issuer: CN ?= ?OCSP test issuing CA/)
  // OpenSSL's client accepts the delegation (it checks the OCSPSigning usage and that the CA issued it).
  t.match(await ask(t, responder, intermediate, cert.certificate, ['-resp_text']), /Response verify OK[\s\S]*Responder Id: CN ?= ?OCSP test issuing CA OCSP responder[\s\S]*cert\.pem: good/)
})

t.test('a signer given as it is: OpenSSL\'s client refuses a response signed by a key the CA never delegated to', async t => {
  const cert = await intermediate.issue({ dnsNames: ['wrong.example'] })
  const other = await createRootCa({ commonName: 'someone else' })
  const responder = await intermediate.startOcspResponder({ signer: { certificate: other.certificate, key: other.key } })
  t.teardown(responder.close)
  t.equal(responder.signerCertificate, other.certificate)
  const verdict = await ask(t, responder, intermediate, cert.certificate)
  t.match(verdict, /Response Verify Failure/)
  t.notMatch(verdict, /Response verify OK/)
})

t.test('the responder listens on one address and a given port, and a port in use is an error with the reason', async t => {
  const first = await intermediate.startOcspResponder()
  t.teardown(first.close)
  await t.rejects(intermediate.startOcspResponder({ port: first.port }), { code: 'ERR_MTLS_PKI_OCSP_RESPONDER', message: /cannot listen on 127\.0\.0\.1:\d+ \(.*EADDRINUSE/ })
  await first.close()
  await first.close()
  await t.rejects(first.refresh(), { code: 'ERR_MTLS_PKI_OCSP_RESPONDER', message: /closed/ })
  const again = await intermediate.startOcspResponder({ port: first.port, host: 'localhost' })
  t.teardown(again.close)
  t.equal(again.url, `http://localhost:${first.port}/`)
})

t.test('files go where asked, and an openssl that cannot start is an error', async t => {
  const dir = await tempDir(t)
  const responder = await intermediate.startOcspResponder({ directory: dir })
  t.equal(responder.indexFile, join(dir, 'index.txt'))
  await responder.close()
  await t.rejects(intermediate.startOcspResponder({ openssl: join(dir, 'no-such-openssl') }), { code: 'ERR_MTLS_PKI_OCSP_RESPONDER', message: /could not start/ })
  // A folder that is a file: nothing starts (the file writer reports it as ENOTDIR today, not as a PkiError).
  await writeFile(join(dir, 'a-file'), '')
  await t.rejects(intermediate.startOcspResponder({ directory: join(dir, 'a-file') }), { code: /ENOTDIR|ERR_MTLS_PKI_/ })
})

t.test('wrong responder options are refused before anything starts', async t => {
  const cases: Array<[string, object, RegExp]> = [
    ['negative port', { port: -1 }, /port must be an integer/],
    ['fractional port', { port: 1.5 }, /port must be an integer/],
    ['empty host', { host: '' }, /host must be/],
    ['no minutes', { nextUpdateMinutes: 0 }, /nextUpdateMinutes must be/],
    ['delegated a string', { delegated: 'yes' }, /delegated must be true or false/],
    ['signer without key', { signer: { certificate: root.certificate } }, /signer must be/],
    ['signer and delegated', { signer: { certificate: root.certificate, key: root.key }, delegated: true }, /not both/],
    ['misspelt key', { prot: 1 }, /unknown option "prot" \(did you mean "port"\?\)/]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(intermediate.startOcspResponder(options), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message }, name)
  }
  t.ok(new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', 'x') instanceof PkiError)
})

t.test('the index holds one line per certificate in OpenSSL\'s format', async t => {
  const notAfter = new Date('2060-01-02T03:04:05Z')
  const text = indexText(
    [{ serialNumber: 'ABC', subject: 'CN=tab\there', notAfter }, { serialNumber: '1234', subject: 'CN=r', notAfter: new Date('2030-01-01T00:00:00Z') }],
    [
      { serialNumber: '1234', date: new Date('2026-01-01T00:00:00Z'), reason: 'privilegeWithdrawn', crlDistributionPoints: null },
      { serialNumber: '77', date: new Date('2026-01-01T00:00:00Z'), reason: 'cACompromise', crlDistributionPoints: null }
    ],
    new Date('2031-01-01T00:00:00Z'))
  t.equal(text, [
    'V\t20600102030405Z\t\t0ABC\tunknown\t/CN=tab here\n',
    // privilegeWithdrawn has no name in OpenSSL's index: revoked without a reason.
    'R\t300101000000Z\t260101000000Z\t1234\tunknown\t/CN=r\n',
    'R\t310101000000Z\t260101000000Z,CACompromise\t77\tunknown\t/\n'
  ].join(''))
})

t.test('the responder takes a POST or a GET of the request (RFC 6960 A.1), and refuses anything else', async t => {
  const responder = await intermediate.startOcspResponder()
  t.teardown(responder.close)
  const cert = await intermediate.issue({ dnsNames: ['get.example'] })
  const dir = await tempDir(t)
  await writeFile(join(dir, 'issuer.pem'), intermediate.certificate)
  await writeFile(join(dir, 'cert.pem'), cert.certificate)
  await run('openssl', ['ocsp', '-issuer', join(dir, 'issuer.pem'), '-cert', join(dir, 'cert.pem'), '-no_nonce', '-reqout', join(dir, 'request.der')])
  const request = await readFile(join(dir, 'request.der'))
  const before = responder.answered
  const byGet = await fetch(`${responder.url}${encodeURIComponent(request.toString('base64'))}`)
  t.equal(byGet.status, 200)
  t.equal(byGet.headers.get('content-type'), 'application/ocsp-response')
  const byPost = await fetch(responder.url, { method: 'POST', body: request, headers: { 'content-type': 'application/ocsp-request' } })
  t.same(Buffer.from(await byPost.arrayBuffer()).subarray(0, 2), Buffer.from(await byGet.arrayBuffer()).subarray(0, 2), 'both DER responses')
  t.equal(responder.answered, before + 2, 'OpenSSL answered both')
  t.equal((await fetch(responder.url)).status, 400, 'a GET without a request')
  t.equal((await fetch(responder.url, { method: 'PUT', body: request })).status, 405)
  t.equal((await fetch(responder.url, { method: 'POST', body: Buffer.alloc(65 * 1024) })).status, 413, 'a body no OCSP request has')
  t.equal((await fetch(responder.url, { method: 'POST', body: Buffer.from('not DER') })).status, 500, 'OpenSSL refuses what is no request')
})
