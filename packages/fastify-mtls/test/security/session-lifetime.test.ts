// A TLS session resumed after its client certificate expired was accepted: OpenSSL does not verify a
// resumed session's certificate again, so the full handshake was refused and the resumed one got 200.
import { randomBytes } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createRootCa, createTestPki } from 'mtls-pki'
import { attempt, beforeExpiry, capturedLogger, clientOf, nextUpdate, pastExpiry, serverFilesWithCrl, sessionFrom, startServer, tempDir } from '../helpers.js'

const pki = await createTestPki()

t.test('no session resumes after the client certificate it was verified with has expired', async t => {
  const { app, port, shortLived, session, before, expiry } = await beforeExpiry(t, async notAfter => {
    const shortLived = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/batch-job', notBefore: new Date(Date.now() - 60_000), notAfter })
    const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
    const session = await sessionFrom(port, shortLived, pki.ca)
    return { app, port, shortLived, session, before: await attempt(port, clientOf(pki, shortLived), { session }) }
  })
  t.same([before.status, before.reused], [200, true], 'while valid, the session resumes')

  await pastExpiry(expiry)
  const resumed = await attempt(port, clientOf(pki, shortLived), { session })
  t.equal(resumed.status, null, 'after notAfter the resumed connection is refused')
  t.equal(resumed.reused, true, 'it was a resumption, which OpenSSL alone would have let through')
  t.equal((await attempt(port, clientOf(pki, shortLived))).status, null, 'as is a full handshake')
  t.equal(app.mtls.stats().failures.expired, 2)
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).status, 200, 'others are served')
})

t.test('no session resumes after a CRL that revokes its certificate is loaded', async t => {
  const root = await createRootCa({ commonName: 'session test root' })
  const intermediate = await root.createIntermediate({ commonName: 'session test intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/soon-revoked' })
  const files = await serverFilesWithCrl(t, root, intermediate, server)
  const { port, serverTls } = await startServer(t, files)
  const asClient = { ca: root.certificate, chain: client.chain, key: client.key }
  const session = await sessionFrom(port, client, root.certificate)
  t.equal((await attempt(port, asClient, { session })).reused, true, 'before the revocation, it resumes')

  intermediate.revoke(client, { reason: 'keyCompromise' })
  const reloaded = nextUpdate(serverTls)
  await writeFile(files.crlFile, (await intermediate.createCrls()).join(''))
  await reloaded
  const after = await attempt(port, asClient, { session })
  t.equal(after.reused, false, 'the ticket keys changed with the trust: no resumption')
  t.equal(after.status, null, 'and the full handshake refuses the revoked certificate')
})

t.test('a ticket keys file readable by group or others is warned about at start', async t => {
  const dir = await tempDir(t)
  for (const [mode, warned] of [[0o644, true], [0o640, true], [0o600, false]] as const) {
    const file = join(dir, `ticket-${mode.toString(8)}.key`)
    await writeFile(file, randomBytes(48), { mode })
    await chmod(file, mode)
    const { logger, lines } = capturedLogger()
    await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, ticketKeysFile: file }, {}, { logger })
    const warning = lines.find(line => String(line.msg).includes('readable by group or others'))
    t.equal(warning !== undefined, warned, `mode ${mode.toString(8)}`)
    if (warned) t.match(warning, { level: 40, mode: mode.toString(8), msg: /share it only between replicas of one service/ })
  }
})
