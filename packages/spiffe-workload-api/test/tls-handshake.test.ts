import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { createX509Source, svidToPem } from '../src/index.js'
import { TestWorkloadApi, svidMessage } from './workload-api-server.js'

const pki = await createTestPki()
const SERVER = 'spiffe://mycompany.com/production/payment-service'
const CLIENT = 'spiffe://mycompany.com/production/order-service'
// Hang limits of the subtests: each ends in well under a second on a quiet machine.
// Below tap's 30 s for the file, so that a hang names its subtest.
const LIMIT = { timeout: hangLimit(20_000) }

t.test('SVIDs from the Workload API complete a mutual TLS 1.3 handshake, each side verifying the other with the bundle', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(SERVER, pki.server), svidMessage(CLIENT, pki.orderService)] })
  const serverSource = await createX509Source({ endpoint: api.endpoint, pick: SERVER })
  const clientSource = await createX509Source({ endpoint: api.endpoint, pick: CLIENT })
  t.teardown(() => { serverSource.close(); clientSource.close() })

  const serverPem = svidToPem(serverSource.current.svid, serverSource.current.bundles)
  const server = tls.createServer({ ...serverPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, socket => socket.end('hello'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const seenByServer = once(server, 'secureConnection')

  const clientPem = svidToPem(clientSource.current.svid)
  const socket = tls.connect({ ...clientPem, host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'localhost' })
  t.teardown(() => socket.destroy())
  await once(socket, 'secureConnect')
  t.equal(socket.authorized, true, String(socket.authorizationError))
  t.equal(socket.getProtocol(), 'TLSv1.3')
  t.match(socket.getPeerX509Certificate()?.subjectAltName, `URI:${SERVER}`)
  const [serverSide] = await seenByServer as [tls.TLSSocket]
  t.equal(serverSide.authorized, true)
  t.match(serverSide.getPeerX509Certificate()?.subjectAltName, `URI:${CLIENT}`)
})

t.test('an SVID from another trust root is refused at the handshake by a server trusting only its bundle', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(SERVER, pki.server), svidMessage(CLIENT, pki.otherCa)] })
  const serverSource = await createX509Source({ endpoint: api.endpoint, pick: SERVER })
  const clientSource = await createX509Source({ endpoint: api.endpoint, pick: CLIENT })
  t.teardown(() => { serverSource.close(); clientSource.close() })
  const server = tls.createServer({ ...svidToPem(serverSource.current.svid), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' })
  let accepted = 0
  server.on('secureConnection', socket => { accepted += 1; socket.end('hello') })
  server.on('tlsClientError', () => {})
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { cert, key } = svidToPem(clientSource.current.svid)
  const socket = tls.connect({ cert, key, ca: svidToPem(serverSource.current.svid).ca, host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'localhost' })
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  const received: Buffer[] = []
  socket.on('data', chunk => received.push(chunk))
  socket.write('hello?')
  await once(socket, 'close')
  t.equal(accepted, 0, 'the server never accepted the connection')
  t.equal(Buffer.concat(received).length, 0, 'the client got nothing through')
})
