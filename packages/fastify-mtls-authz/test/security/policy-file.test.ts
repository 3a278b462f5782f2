// Attack: the policy file goes through the one reload protocol, whose reads block. A FIFO renamed over the
// policy file (a wrong mount, a process substitution, anyone who can write the directory) makes readFile()
// wait in open() for a writer; the reload never settles, and every later change of the file joins it. A
// revocation written afterwards never takes effect: the caller keeps the role it was meant to lose.
import { execFile } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { link, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { agentFor, call, countOpens, startServer } from '../helpers.js'

const pki = await createTestPki()
const grant = { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:read'] }] }
const revoke = { acl: [] }

t.test('a FIFO swapped in for a moment does not stop later policy changes (a revocation) from applying', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'review-policy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const policyFile = join(dir, 'policy.json')
  await writeFile(policyFile, JSON.stringify(grant))
  const { app, url } = await startServer(t, pki, { policyFile }, app => {
    app.get('/read', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'ok')
  })
  const agent = agentFor(t, pki, pki.orderService)
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'granted')

  // Made outside the watched directory: renaming it over the policy file is the one change the watcher sees.
  const staging = await mkdtemp(join(tmpdir(), 'review-policy-fifo-'))
  t.teardown(() => rm(staging, { recursive: true, force: true }))
  const fifo = join(staging, 'policy.fifo')
  await promisify(execFile)('mkfifo', [fifo])
  const keep = join(staging, 'keep.fifo')
  await link(fifo, keep) // to let the blocked reader go at the end
  const release = (): void => { try { closeSync(openSync(keep, constants.O_WRONLY | constants.O_NONBLOCK)) } catch {} }
  t.teardown(release)
  const opens = countOpens(t, policyFile)
  await rename(fifo, policyFile)
  // The watcher's reload has the FIFO open (a reload that blocks in open() never gets this far: the hang limit ends it).
  await until(() => opens() > 0, 'the watcher to open the FIFO', 10_000)

  await writeFile(join(dir, 'next.json'), JSON.stringify(revoke))
  await rename(join(dir, 'next.json'), policyFile)
  // This got through before the fix: the granting policy stays: the revocation waits behind the blocked reload until someone
  // opens the FIFO for writing (release() at teardown); plugin.ts policyFileSource() reads with readFile(). The hang is the failure.
  await until(() => JSON.stringify(app.mtlsAuthz.policy) === JSON.stringify(revoke), 'the revoking policy', 10_000)
  t.same(app.mtlsAuthz.policy, revoke, 'the revoking policy is in force')
  t.equal((await call(url, agent, 'GET', '/read')).status, 403, 'the role is gone')
})
