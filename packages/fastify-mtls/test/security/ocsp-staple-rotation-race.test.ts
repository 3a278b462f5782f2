// The attack the stapling rotation-under-load test found: a connection accepted before a rotation whose ClientHello
// arrives after it. Its TLS socket was made with the old secure context, so it serves the old certificate, but Node
// names the server's current (new) certificate to the OCSPRequest listener: the new certificate's response was
// stapled to the old certificate, and a client that checks its staple (undici-mtls, curl --cert-status) refused the
// server. Here the timing is made exact: a TCP connection is opened, the certificate rotated, and only then the TLS
// handshake begun on that connection.
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { verifyOcspResponse } from 'mtls-core/ocsp'
import { until } from 'mtls-test-support'
import { startServer, tempDir, type Teardown } from '../helpers.js'

const root = await createRootCa({ commonName: 'race root' })
const intermediate = await root.createIntermediate({ commonName: 'race CA' })
const responder = await intermediate.startOcspResponder()
t.teardown(responder.close)
const issuer = new X509Certificate(intermediate.certificate).raw

async function serverCert (): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ocspUrl: responder.url, mustStaple: true })
  await responder.refresh()
  return cert
}

async function start (t: Teardown, first: IssuedCertificate): Promise<{ app: FastifyInstance, port: number, rotate: (next: IssuedCertificate) => Promise<void> }> {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await writeFile(files.certFile, first.chain)
  await writeFile(files.keyFile, first.key)
  await writeFile(files.caFile, root.certificate)
  const { app, port } = await startServer(t, { ...files, mode: 'optional' }, { ocspStapling: true, watch: false })
  const rotate = async (next: IssuedCertificate): Promise<void> => {
    await writeFile(files.certFile, next.chain)
    await writeFile(files.keyFile, next.key)
    await app.mtls.reload()
    // The new certificate's staple is in force: nothing is left waiting for a fetch.
    await until(() => app.mtls.status().ocsp?.status === 'good', 'the new certificate stapled')
  }
  return { app, port, rotate }
}

/** A TCP connection the server has accepted (its TLS socket made, with the secure context of this moment). */
async function accepted (app: FastifyInstance, port: number): Promise<Socket> {
  const acceptedNow = once(app.server, 'connection')
  const socket = connect(port, '127.0.0.1')
  await Promise.all([once(socket, 'connect'), acceptedNow])
  return socket
}

/** The TLS handshake on `socket`, asking for a staple: the certificate served and its staple's status for it. */
async function handshake (socket: Socket): Promise<{ served: string, staple: string }> {
  return await new Promise((resolve, reject) => {
    let stapled: Buffer | null = null
    // requestOCSP is a TLSSocket option that @types/node leaves out of tls.connect's.
    const secure = tls.connect({ socket, servername: 'localhost', ca: root.certificate, requestOCSP: true } as tls.ConnectionOptions)
    secure.on('OCSPResponse', (body: Buffer) => { stapled = body })
    secure.on('error', reject)
    secure.on('secureConnect', () => {
      const served = secure.getPeerX509Certificate() as X509Certificate
      let staple = 'none'
      if (stapled !== null) {
        try {
          staple = verifyOcspResponse(stapled, { certificate: served.raw, issuer }).status
        } catch (err) {
          staple = `not for the certificate served: ${(err as Error).message}`
        }
      }
      secure.end()
      resolve({ served: served.fingerprint256, staple })
    })
  })
}

t.test('a connection accepted before a rotation and handshaking after it is stapled its own certificate\'s response', async t => {
  const first = await serverCert()
  const { app, port, rotate } = await start(t, first)
  const early = await accepted(app, port)
  t.teardown(() => early.destroy())
  const second = await serverCert()
  await rotate(second)
  t.same(await handshake(early), { served: first.fingerprint256, staple: 'good' }, 'the old certificate, with the old certificate\'s good response')
  t.same(await handshake(await accepted(app, port)), { served: second.fingerprint256, staple: 'good' }, 'a connection accepted now: the new certificate and its response')
})

t.test('two rotations later, such a connection is stapled nothing rather than another certificate\'s response', async t => {
  const first = await serverCert()
  const { app, port, rotate } = await start(t, first)
  const early = await accepted(app, port)
  t.teardown(() => early.destroy())
  await rotate(await serverCert())
  const third = await serverCert()
  await rotate(third)
  t.same(await handshake(early), { served: first.fingerprint256, staple: 'none' })
  t.same(await handshake(await accepted(app, port)), { served: third.fingerprint256, staple: 'good' })
})
