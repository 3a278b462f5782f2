// Per-call costs of the hot paths. Run `pnpm --filter mtls-core bench` after `pnpm build`.
import { once } from 'node:events'
import * as tls from 'node:tls'
import { createTestPki } from 'mtls-pki'
import { IdentityMatcher, parseSpiffeId, parseXfcc, readPemBlocks, toPeerIdentity } from '../dist/index.js'

const ROUNDS = 7

function measure (label, iterations, fn, target) {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(i) // warm-up
  const perCall = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn(i)
    perCall.push(Number(process.hrtime.bigint() - start) / iterations / 1000)
  }
  perCall.sort((a, b) => a - b)
  const median = perCall[Math.floor(ROUNDS / 2)]
  console.log(`| ${label.padEnd(58)} | ${median.toFixed(3).padStart(8)} | ${target.padStart(8)} |`)
}

const pki = await createTestPki()
const der = readPemBlocks(pki.orderService.certificate)[0].der
// More distinct certificates than mtls-core keeps walked by content (1,024), cycled and copied (as each
// connection brings its own buffer) so each call walks one anew.
const fresh = []
for (let batch = 0; batch < 11; batch++) {
  const issued = await Promise.all(Array.from({ length: 100 }, (_, i) => pki.intermediate.issue({ usage: 'client', spiffeId: `spiffe://example.org/bench/service-${batch * 100 + i}` })))
  fresh.push(...issued.map(cert => readPemBlocks(cert.certificate)[0].der))
}

// A real mTLS connection, to read the peer certificate the way a server does.
const server = tls.createServer({ key: pki.server.key, cert: pki.server.chain, ca: pki.ca, requestCert: true, minVersion: 'TLSv1.3' })
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const serverSide = once(server, 'secureConnection')
const client = tls.connect({ port: server.address().port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key })
const [socket] = await serverSide

const patterns = []
for (let i = 0; i < 700; i++) patterns.push([`spiffe://mycompany.com/team-${i}/service-${i}`, `role-${i}`])
for (let i = 0; i < 200; i++) patterns.push([`spiffe://mycompany.com/env-${i}/*/api`, `wild-${i}`])
for (let i = 0; i < 50; i++) patterns.push([`spiffe://partner-${i}.org/**`, `partner-${i}`])
for (let i = 0; i < 50; i++) patterns.push([`dns:*.svc-${i}.example.com`, `dns-${i}`])
patterns.push(['spiffe://mycompany.com/production/order-service', 'payments:charge'], ['spiffe://mycompany.com/production/**', 'payments:read'])
const matcher = new IdentityMatcher(patterns)
const identity = toPeerIdentity(der)

const xfcc = [
  'By=spiffe://mycompany.com/envoy-a;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="CN=order-service,O=Acme";URI=spiffe://mycompany.com/production/order-service',
  'By=spiffe://mycompany.com/envoy-b;Hash=568ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=spiffe://mycompany.com/production/envoy-a;DNS=envoy-a.internal',
  'By=spiffe://mycompany.com/payment-service;Hash=668ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=spiffe://mycompany.com/production/envoy-b'
].join(',')

console.log(`mtls-core on Node ${process.version}, OpenSSL ${process.versions.openssl}; median of ${ROUNDS} rounds (µs per call)\n`)
console.log('| what                                                       |       µs |   target |')
console.log('| ---------------------------------------------------------- | -------: | -------: |')
measure('socket.getPeerX509Certificate() alone (Node)', 20000, () => socket.getPeerX509Certificate(), '')
measure('toPeerIdentity(socket.getPeerX509Certificate()), P-256 SVID', 20000, () => toPeerIdentity(socket.getPeerX509Certificate()), '< 10')
measure('toPeerIdentity(der), P-256 SVID not seen lately', 11000, i => toPeerIdentity(Buffer.from(fresh[i % fresh.length])), '< 10')
measure('toPeerIdentity(der), the same certificate again', 20000, () => toPeerIdentity(Buffer.from(der)), '< 10')
measure('matcher lookup, 1,002 compiled patterns, 2 hits', 200000, () => matcher.lookup(identity), '< 1')
measure('matcher matches(), 1,002 compiled patterns', 200000, () => matcher.matches(identity), '< 1')
measure('parseXfcc, 3 elements', 50000, () => parseXfcc(xfcc), '')
measure('parseSpiffeId', 200000, () => parseSpiffeId('spiffe://mycompany.com/production/order-service'), '')

client.destroy()
socket.destroy()
server.close()
