import { existsSync } from 'node:fs'
import t from 'tap'
import { certificateDir, listening, startDemo } from './demo-process.js'
import { hangLimit } from './hang-limit.js'

// The file's hang limit (one demo process): tap's own 30 s is no limit scaled for a busy machine.
t.setTimeout(hangLimit(90_000))

const story = async t => {
  const run = startDemo([])
  t.teardown(run.kill)
  return await run.exited
}

t.test('pnpm demo tells the whole story and exits 0', async t => {
  const { code, output } = await story(t)
  t.equal(code, 0, 'exit code 0', { output })
  t.match(output, /POST \/api\/payments\/charge -> 200 .*"requestedBy":"spiffe:\/\/mycompany.com\/production\/order-service"/)
  t.match(output, /-> 403 .*"code":"FST_MTLS_AUTHZ_FORBIDDEN"/)
  t.match(output, /GET \/api\/payments\/1 -> 401 .*"code":"FST_MTLS_AUTHZ_PEER_REQUIRED"/)
  t.match(output, /\/health answers 200/)
  t.match(output, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/)
  t.match(output, /ok {2}\d+ charges during the rotation, 0 failed/)
  t.match(output, /status shows the rotated certificate and the reload/)
  t.match(output, 'Every step behaved as expected.')
  t.notMatch(output, /step \d+ failed/)
  t.notOk(existsSync(certificateDir(output)), 'the certificates are removed')

  t.test('it prints who holds which role before payment-service starts with that policy', async t => {
    const policyAt = output.indexOf("payment-service's policy")
    t.ok(policyAt > 0 && policyAt < output.indexOf('payment-service starts'), 'the policy comes first')
    const policy = output.slice(policyAt, output.indexOf('payment-service starts'))
    t.match(policy, /spiffe:\/\/mycompany\.com\/production\/order-service +holds payments:charge\n/)
    t.match(policy, /spiffe:\/\/mycompany\.com\/production\/\*\* +holds payments:read\n/)
    t.match(policy, /anyone else +holds no role/)
    t.match(policy, /POST \/api\/payments\/charge +needs payments:charge\n/)
    t.match(policy, /GET \/api\/payments\/:id +needs payments:read\n/)
    t.match(policy, /GET \/health +public/)
  })

  t.test('undici-mtls refuses a server whose SPIFFE ID is not the expected one, before sending the request', async t => {
    t.match(output, /POST \/api\/payments\/charge -> ERR_MTLS_SERVER_UNAUTHORIZED: server not authorized: expected spiffe:\/\/mycompany\.com\/production\/ledger-service, got "spiffe:\/\/mycompany\.com\/production\/payment-service"/)
    t.match(output, /ok {2}refused with ERR_MTLS_SERVER_UNAUTHORIZED/)
    t.match(output, /ok {2}payment-service never saw that charge \(GET \/api\/payments\/2 -> 404\)/)
  })

  t.test('certificate-bound tokens: the token works from the certificate it is bound to, and a replay is refused', async t => {
    const issued = output.match(/POST https:\/\/localhost:\d+\/token -> 200, cnf x5t#S256 ([A-Za-z0-9_-]{43})\n/)
    t.ok(issued, 'token-issuer answers with a token whose cnf holds an x5t#S256 thumbprint')
    t.match(output, new RegExp(`ok {2}token-issuer bound the token to order-service's certificate \\(undici-mtls agent\\.status\\(\\)\\.certificate\\.thumbprintS256 ${issued?.[1]}\\)`), "the thumbprint is the one of the certificate order-service's agent presents")
    t.match(output, /GET \/api\/payments\/1\/receipt \(order-service, its token\) -> 200 .*"for":"spiffe:\/\/mycompany\.com\/production\/order-service"/)
    t.match(output, /GET \/api\/payments\/1\/receipt \(inventory-service, order-service's token\) -> 401 .*"code":"FST_MTLS_AUTHZ_TOKEN_MISMATCH"/)
    t.match(output, /www-authenticate: Bearer error="invalid_token", error_description="token is bound to another certificate"\n/)
    t.match(output, /ok {2}inventory-service replaying it with its own certificate is refused: 401 invalid_token/)
    t.match(output, /GET \/api\/payments\/:id\/receipt +needs payments:read and an access token bound to its certificate\n/, 'the policy printed says so')
  })

  t.test('one revocation: the caller whose certificate is revoked at the OCSP responder is refused on a new connection, the others are not', async t => {
    const step = output.slice(output.indexOf('one revocation:'))
    t.ok(output.indexOf('one revocation:') > output.indexOf("payment-service's fastify.mtls.status() and stats()"), 'after the other steps')
    t.match(step, /revoked serial [0-9A-F]+ \(keyCompromise\); http:\/\/127\.0\.0\.1:\d+\/ now answers revoked for it/)
    t.match(step, /POST \/api\/payments\/charge \(replica b, a new connection\) -> 401 .*"code":"FST_MTLS_AUTHZ_PEER_REQUIRED".*\(CERT_REVOKED\)/, 'the revoked caller is refused')
    t.match(step, /POST \/api\/payments\/charge \(replica a, a new connection\) -> 200 .*"requestedBy":"spiffe:\/\/mycompany\.com\/production\/order-service"/, 'an unrevoked caller with the same SPIFFE ID is not')
    t.match(step, /ok {2}inventory-service still reads payments on a new connection \(GET \/api\/payments\/\d+ -> 200\)/)
    t.match(step, /ok {2}payment-service counted the refusal: stats\(\)\.failures\.revoked 1\n/)
    t.match(step, /status\(\)\.revocation\.ocsp: \d+ certificates' answers cached, 0 lookups under way, 1 responder asked, last error none/)
  })

  t.test('the OCSP responder the demo started is stopped when it ends', async t => {
    const port = Number(output.match(/OCSP responder \(openssl ocsp\) at http:\/\/127\.0\.0\.1:(\d+)\//)?.[1])
    t.ok(port > 0, 'the demo says where its responder listens')
    t.notOk(await listening(port), 'nothing listens there any more')
  })

  t.test('wherever it prints the unverified count, it says what it counts', async t => {
    const lines = output.split('\n').filter(line => /unverified/i.test(line))
    t.equal(lines.length, 1, 'one place prints it')
    t.match(lines[0], /^ {3}unverified \d+: of those, connections without a verified client certificate, which optional mode lets in/)
    t.match(output, /unverified \d+: .*\n {5}of the client without a certificate and of the stranger's \(its CA is not trusted\)/)
    // The anonymous client's two connections (the second resumes the first's session) and the stranger's one
    // are the demo's only ones without a verified certificate, on every Node version.
    t.equal(Number(lines[0].match(/unverified (\d+)/)[1]), 3, 'all are counted, a resumed one too')
    t.match(output, /handshakes \d+: TLS connections that completed the handshake/)
  })
})
