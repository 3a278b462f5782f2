// What a forwarded certificate costs the server: reading request.peerIdentity through a trusted proxy's
// keep-alive connection, for a header seen before (the verdict cache) and for a new client's header (decode,
// chain verification, identity). Run `node bench/forwarded-verification.js` after `pnpm build`.
// Bounded: 2,000 distinct client certificates and 20,000 cached reads.
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { Pool } from 'undici'
import { fastifyMtlsIdentity } from '../dist/index.js'

const DISTINCT_CLIENTS = 2000
const CACHED_READS = 20_000

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const clients = await Promise.all(Array.from({ length: DISTINCT_CLIENTS }, (_, i) => pki.intermediate.issue({ usage: 'client', spiffeId: `spiffe://mycompany.com/production/client-${i}` })))
const headers = clients.map(client => readPemBlocks(client.certificate)[0].der.toString('base64'))

const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, crl: [...pki.crl] })
const app = Fastify({ https: serverTls.httpsOptions })
await app.register(fastifyMtls, { tls: serverTls })
await app.register(fastifyMtlsIdentity, { trustedProxies: { identities: ['spiffe://mycompany.com/infra/**'] }, forwarded: 'aspnet' })
let samples = []
app.get('/read', async request => {
  const start = process.hrtime.bigint()
  const identity = request.peerIdentity
  samples.push(Number(process.hrtime.bigint() - start))
  if (identity === null) throw new Error(request.peerCertificateError)
  return 'ok'
})
await app.listen({ port: 0, host: '127.0.0.1' })
const pool = new Pool(`https://127.0.0.1:${app.server.address().port}`, { connections: 1, connect: { ca: pki.ca, servername: 'localhost', cert: proxy.chain, key: proxy.key } })

const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] / 1000
for (const header of headers) await (await pool.request({ path: '/read', method: 'GET', headers: { 'x-client-cert': header } })).body.dump()
const distinct = median(samples.slice(DISTINCT_CLIENTS / 2))
samples = []
for (let i = 0; i < CACHED_READS; i++) await (await pool.request({ path: '/read', method: 'GET', headers: { 'x-client-cert': headers[i % 100] } })).body.dump()
const cached = median(samples.slice(CACHED_READS / 2))
console.log(`request.peerIdentity through a trusted proxy, Node ${process.version}, median µs:`)
console.log(`  a new client's certificate (decode, verify chain and CRLs, identity): ${distinct.toFixed(1)}`)
console.log(`  a client seen before (verdict cache): ${cached.toFixed(2)}`)
await pool.close()
await app.close()
