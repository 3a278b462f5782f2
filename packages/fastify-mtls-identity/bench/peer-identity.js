// What reading request.peerIdentity costs: on a warm keep-alive connection (the per-connection cache hit)
// and on each new connection (the one certificate read). Run `pnpm --filter fastify-mtls-identity bench`
// after `pnpm build`. Bounded: 20,000 keep-alive requests and 2,000 new connections.
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { Agent, Pool, request } from 'undici'
import { fastifyMtlsIdentity } from '../dist/index.js'

const KEEP_ALIVE_REQUESTS = 20_000
// Enough new connections for V8 to optimise the per-connection path; the first half is left out as warm-up.
const NEW_CONNECTIONS = 2000

const pki = await createTestPki()
const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
const app = Fastify({ https: serverTls.httpsOptions })
await app.register(fastifyMtls, { tls: serverTls })
await app.register(fastifyMtlsIdentity)

const samples = { first: [], empty: [] }
app.get('/read', async request => {
  let start = process.hrtime.bigint()
  const identity = request.peerIdentity
  samples.first.push(Number(process.hrtime.bigint() - start))
  start = process.hrtime.bigint()
  samples.empty.push(Number(process.hrtime.bigint() - start)) // the timer's own cost, to subtract
  return identity === null ? 'none' : 'ok'
})
await app.listen({ port: 0, host: '127.0.0.1' })
const url = `https://127.0.0.1:${app.server.address().port}`
const connect = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, servername: 'localhost' }

const median = values => {
  const settled = values.slice(Math.floor(values.length / 2)).sort((a, b) => a - b)
  return settled[Math.floor(settled.length / 2)]
}
const report = (label, target) => {
  const cost = Math.max(0, median(samples.first) - median(samples.empty)) / 1000
  console.log(`| ${label.padEnd(52)} | ${cost.toFixed(3).padStart(8)} | ${target.padStart(8)} |`)
  samples.first.length = 0
  samples.empty.length = 0
}

console.log(`fastify-mtls-identity on Node ${process.version}; medians, timer cost subtracted (µs)\n`)
console.log('| what                                                 |       µs |   target |')
console.log('| ---------------------------------------------------- | -------: | -------: |')

const pool = new Pool(url, { connect, connections: 1, pipelining: 1 })
for (let i = 0; i < 200; i++) await (await pool.request({ path: '/read', method: 'GET' })).body.text() // warm-up
samples.first.length = 0
samples.empty.length = 0
for (let i = 0; i < KEEP_ALIVE_REQUESTS; i++) await (await pool.request({ path: '/read', method: 'GET' })).body.text()
report('request.peerIdentity, warm keep-alive connection', '< 0.2')
await pool.close()

for (let i = 0; i < NEW_CONNECTIONS; i++) {
  const agent = new Agent({ connect })
  await (await request(`${url}/read`, { dispatcher: agent })).body.text()
  await agent.close()
}
report('request.peerIdentity, first read on a new connection', '< 10')
await app.close()
