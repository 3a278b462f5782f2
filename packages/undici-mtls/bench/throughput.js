// Keep-alive request throughput through undici-mtls vs a plain undici TLS agent with the same certificate,
// against the same server in its own process, alternating runs. Run `pnpm --filter undici-mtls bench` after `pnpm build`.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createTestPki } from 'mtls-pki'
import { Agent, request } from 'undici'
import { createMtlsAgent } from '../dist/index.js'

const ROUNDS = 4
const DURATION_MS = 3000
const CONCURRENCY = 16

if (process.argv[2] === 'server') {
  const { default: Fastify } = await import('fastify')
  const { fastifyMtls, loadServerTls } = await import('fastify-mtls')
  const material = JSON.parse(process.argv[3])
  const tls = await loadServerTls(material)
  const app = Fastify({ https: tls.httpsOptions })
  await app.register(fastifyMtls, { tls })
  app.get('/', async () => ({ hello: 'world' }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.send(app.server.address().port)
} else {
  const pki = await createTestPki()
  const server = fork(fileURLToPath(import.meta.url), ['server', JSON.stringify({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })])
  const [port] = await once(server, 'message')
  const url = `https://127.0.0.1:${port}/`
  const clients = {
    'undici TLS agent': new Agent({ connections: CONCURRENCY, connect: { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, servername: 'localhost' } }),
    'undici-mtls (server authorized by SPIFFE ID)': await createMtlsAgent({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca, server: 'spiffe://mycompany.com/production/payment-service', agent: { connections: CONCURRENCY } })
  }
  const run = async dispatcher => {
    let done = 0
    const end = Date.now() + DURATION_MS
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        const response = await request(url, { dispatcher })
        await response.body.dump()
        done++
      }
    }))
    return done / (DURATION_MS / 1000)
  }
  const results = Object.fromEntries(Object.keys(clients).map(name => [name, []]))
  for (const dispatcher of Object.values(clients)) await run(dispatcher) // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, dispatcher] of Object.entries(clients)) results[name].push(await run(dispatcher))
  }
  const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const base = median(results['undici TLS agent'])
  console.log(`undici-mtls on Node ${process.version}; ${CONCURRENCY} concurrent keep-alive loops, ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s\n`)
  console.log('| client | req/s (median) | ratio |')
  console.log('| --- | ---: | ---: |')
  for (const [name, values] of Object.entries(results)) console.log(`| ${name} | ${Math.round(median(values))} | ${(median(values) / base).toFixed(3)} |`)
  for (const dispatcher of Object.values(clients)) await dispatcher.close()
  server.kill()
}
