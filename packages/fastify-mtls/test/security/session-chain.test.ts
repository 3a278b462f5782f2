// Attack: "sessions never outlive what they were verified with" is enforced for the client's leaf only. The
// full handshake also verified the issuing intermediate's validity and the CRLs' freshness; a resumed
// session is checked against neither, so it outlives an expired intermediate and an expired CRL, which
// a full handshake refuses.
import t from 'tap'
import { createRootCa } from 'mtls-pki'
import { attempt, beforeExpiry, pastExpiry, sessionFrom, startServer } from '../helpers.js'

// Both wait for an expiry, each with CAs and a server of its own: side by side, the waits overlap.
t.jobs = 2

t.test('no session resumes after the intermediate that issued its client certificate has expired', async t => {
  const root = await createRootCa({ commonName: 'chain test root' })
  const serverCa = await root.createIntermediate({ commonName: 'chain test server CA' })
  const server = await serverCa.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const { app, port, asClient, session, before, expiry } = await beforeExpiry(t, async notAfter => {
    const shortCa = await root.createIntermediate({ commonName: 'short-lived client CA', notBefore: new Date(Date.now() - 60_000), notAfter })
    // A 90-day leaf under a CA that ends in a second or two (what a CA rotation gone wrong, or a long-lived leaf, gives).
    const client = await shortCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job' })
    const { app, port } = await startServer(t, { cert: server.chain, key: server.key, ca: root.certificate })
    const asClient = { ca: root.certificate, chain: client.chain, key: client.key }
    const session = await sessionFrom(port, client, root.certificate)
    return { app, port, asClient, session, before: await attempt(port, asClient, { session }) }
  })
  t.same([before.status, before.reused], [200, true], 'while the CA is valid, the session resumes')

  await pastExpiry(expiry)
  t.equal((await attempt(port, asClient)).status, null, 'a full handshake is refused: the intermediate has expired')
  const resumed = await attempt(port, asClient, { session })
  // This got through before the fix: the resumed session is served (200). plugin.ts outsideValidity() checks the leaf's validity only;
  // the expired intermediate the session was verified with is never looked at again.
  t.equal(resumed.status, null, 'the resumed session is refused too')
  t.ok(app.mtls.stats().failures.expired >= 2, 'and counted as expired')
})

t.test('no session resumes after the CRL it was verified against is past its nextUpdate', async t => {
  const root = await createRootCa({ commonName: 'crl test root' })
  const intermediate = await root.createIntermediate({ commonName: 'crl test intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job' })
  const asClient = { ca: root.certificate, chain: client.chain, key: client.key }
  const { port, session, before, expiry } = await beforeExpiry(t, async nextUpdate => {
    const crl = await intermediate.createCrls({ nextUpdate })
    const { port } = await startServer(t, { cert: server.chain, key: server.key, ca: root.certificate, crl })
    const session = await sessionFrom(port, client, root.certificate)
    return { port, session, before: await attempt(port, asClient, { session }) }
  })
  t.equal(before.reused, true, 'while the CRLs are current, the session resumes')

  await pastExpiry(expiry)
  t.equal((await attempt(port, asClient)).status, null, 'a full handshake is refused: OpenSSL will not verify against an expired CRL (CRL_HAS_EXPIRED)')
  const resumed = await attempt(port, asClient, { session })
  // This got through before the fix: the resumed session is served (200) though no current revocation information exists for its
  // certificate: a certificate revoked in the CRL that failed to arrive keeps resuming.
  t.equal(resumed.status, null, 'the resumed session is refused too')
})
