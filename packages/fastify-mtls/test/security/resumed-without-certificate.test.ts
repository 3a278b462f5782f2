import tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { attempt, clientOf, startServer } from '../helpers.js'

const pki = await createTestPki()

// A session a client without a certificate resumes: Node 20 reports it as `authorized` (there was nothing to
// verify), Node 24 does not. It is not a verified client either way, and is counted as unverified.
t.test('optional mode: a resumed session without a client certificate is unverified', async t => {
  const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const session = await new Promise<Buffer>((resolve, reject) => {
    let ticket: Buffer | undefined
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca })
    socket.on('session', s => { ticket = s })
    socket.on('secureConnect', () => socket.write('GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => { ticket === undefined ? reject(new Error('no session ticket')) : resolve(ticket) })
  })
  const resumed = await attempt(port, clientOf(pki), { session })
  t.equal(resumed.status, 200)
  t.ok(resumed.reused, 'the session was resumed')
  t.match(JSON.parse(resumed.body), { peer: null })
  t.match(app.mtls.stats(), { handshakes: 2, resumed: 1, unverified: 2 }, 'both connections are unverified')
})
