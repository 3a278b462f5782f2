// Attack: the session ticket keys are derived from the base secret, the trust and the server's names, but
// not from the mode. A server in `optional` mode (health probes, a PERMISSIVE-to-STRICT migration) issues
// tickets to clients that showed no certificate; a `require`-mode server of the same service with the same
// ticketKeys/ticketKeysFile (replicas during the migration, or two ports of one service) resumes them. In
// TLS 1.3 Node reports a resumed session without a peer certificate as `authorized` (a PSK handshake), and
// fastify-mtls's resumed-session check only looks at a certificate when there is one.
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { promisify } from 'node:util'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { attempt, clientOf, sessionFrom, startServer, tempDir } from '../helpers.js'

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

// Connects without a client certificate, makes one request, resolves with the ticket it was given.
async function anonymousSession (port: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    let session: Buffer | undefined
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca })
    socket.on('session', s => { session = s })
    socket.on('secureConnect', () => socket.write('GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => { session === undefined ? reject(new Error('no session ticket')) : resolve(session) })
  })
}

t.test('a session made without a client certificate never resumes into a require-mode server', async t => {
  const dir = await tempDir(t)
  const ticketKeysFile = join(dir, 'ticket.key')
  await writeFile(ticketKeysFile, randomBytes(48), { mode: 0o600 })
  const permissive = await startServer(t, { ...material, ticketKeysFile, mode: 'optional' }, { watch: false })
  const strict = await startServer(t, { ...material, ticketKeysFile }, { watch: false })
  t.equal((await attempt(strict.port, clientOf(pki))).status, null, 'the require-mode server refuses a full handshake without a certificate')

  const session = await anonymousSession(permissive.port)
  const resumed = await attempt(strict.port, clientOf(pki), { session })
  // This got through before the fix: the anonymous session from the optional-mode replica resumes into the require-mode one and gets
  // 200 with { authorized: true, peer: null }: require mode is bypassed without any certificate. The mode is
  // not part of the ticket key derivation (ticket-keys.ts), and onSecureConnection (plugin.ts) lets a
  // resumed connection with no peer certificate through in require mode.
  t.equal(resumed.status, null, 'the resumed connection without a certificate is refused')
  t.not(resumed.body.includes('"authorized":true'), true, 'and never reaches a route as authorized')

  // Refused correctly: a session whose certificate did not verify carries OpenSSL's verdict with it.
  const foreign = await sessionFrom(permissive.port, pki.otherCa, pki.ca)
  t.equal((await attempt(strict.port, clientOf(pki, pki.otherCa), { session: foreign })).status, null, 'an unverified certificate\'s session is refused')
})

t.test('the same with a fixed ticketKeys buffer (two ports of one service)', async t => {
  const ticketKeys = randomBytes(48)
  const probes = await startServer(t, { ...material, ticketKeys, mode: 'optional' }, { watch: false })
  const api = await startServer(t, { ...material, ticketKeys }, { watch: false })
  const session = await anonymousSession(probes.port)
  const resumed = await attempt(api.port, clientOf(pki), { session })
  // This got through before the fix: same bypass as above, with `ticketKeys` instead of a file.
  t.equal(resumed.status, null, 'refused')
  t.equal(api.app.mtls.stats().handshakes, 0, 'no connection reached the application')
})

// Attack: the keys file replaced by a FIFO. readKeyFile() open()s it blocking: the ticket keys reload never
// settles, and mtls.reload() awaits it before it even looks at the certificate material.
t.test('a FIFO in place of the ticket keys file does not hang mtls.reload()', async t => {
  const dir = await tempDir(t)
  const ticketKeysFile = join(dir, 'ticket.key')
  await writeFile(ticketKeysFile, randomBytes(48), { mode: 0o600 })
  const { app } = await startServer(t, { ...material, ticketKeysFile }, { watch: false })
  await rm(ticketKeysFile)
  await promisify(execFile)('mkfifo', [ticketKeysFile])
  const release = (): void => { try { closeSync(openSync(ticketKeysFile, constants.O_WRONLY | constants.O_NONBLOCK)) } catch {} }
  t.teardown(release)
  const reload = app.mtls.reload()
  let timer: NodeJS.Timeout | undefined
  // Settling is immediate; only a hang waits out the limit.
  const outcome = await Promise.race([reload.then(() => 'settled', () => 'settled'), new Promise(resolve => { timer = setTimeout(() => resolve('pending'), hangLimit(30_000)) })])
  clearTimeout(timer)
  release()
  await reload.catch(() => {})
  // This got through before the fix: 'pending' until a writer opens the FIFO (release() above); every later reload() joins it.
  t.equal(outcome, 'settled', 'mtls.reload() settles (the keys file refused, the material reloaded)')
})
