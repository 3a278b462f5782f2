import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { nextUpdate, serverFilesWithCrl, startServer, type Teardown } from './helpers.js'

/** A kept-alive connection that has had one request answered, and a way to ask it again. */
async function keptAlive (t: Teardown & { equal: (a: unknown, b: unknown, message: string) => void }, name: string, port: number, ca: string, client: IssuedCertificate): Promise<{ socket: tls.TLSSocket, closed: Promise<unknown>, ask: () => Promise<string> }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: client.chain, key: client.key })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const closed = once(socket, 'close')
  await once(socket, 'secureConnect')
  const ask = async (): Promise<string> => {
    socket.write('GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const [chunk] = await Promise.race([once(socket, 'data'), closed.then(() => ['(closed)'])]) as [Buffer | string]
    return String(chunk).split('\r\n')[0] ?? ''
  }
  t.equal(await ask(), 'HTTP/1.1 200 OK', `${name}: served before the reload`)
  return { socket, closed, ask }
}

t.test('require mode: a new CRL closes the open connections of the certificates it revokes, and only those', async t => {
  const root = await createRootCa({ commonName: 'trust change root' })
  const intermediate = await root.createIntermediate({ commonName: 'trust change intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const revoked = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/soon-revoked' })
  const kept = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/kept' })
  const files = await serverFilesWithCrl(t, root, intermediate, server)
  const { app, port, serverTls } = await startServer(t, files, { watch: { debounceMs: 20 } })
  const doomed = await keptAlive(t, 'the client to be revoked', port, root.certificate, revoked)
  const other = await keptAlive(t, 'another client', port, root.certificate, kept)

  intermediate.revoke(revoked, { reason: 'keyCompromise' })
  const reloaded = nextUpdate(serverTls)
  await writeFile(files.crlFile, (await intermediate.createCrls()).join(''))
  await reloaded
  const closedInTime = await Promise.race([doomed.closed.then(() => true), new Promise(resolve => setTimeout(resolve, 5000, false))])
  t.equal(closedInTime, true, 'the revoked certificate\'s connection is closed by the server')
  t.equal(other.socket.destroyed, false, 'the other connection stays open')
  t.equal(await other.ask(), 'HTTP/1.1 200 OK', 'and is still served')
  t.equal(app.mtls.stats().failures.revoked, 1, 'counted as revoked')
})
