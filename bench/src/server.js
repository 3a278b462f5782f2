// One benchmark server, in a process of its own: `node server.js <scenario> <certificate directory>`.
// Reports its port over IPC. Every scenario answers GET / with the same small JSON.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'

const [scenario, dir] = process.argv.slice(2)
const file = name => join(dir, name)
const material = { certFile: file('server-chain.pem'), keyFile: file('server-key.pem'), caFile: file('server-ca.pem') }
let app

switch (scenario) {
  case 'http':
    app = Fastify()
    break
  case 'tls':
    app = Fastify({ https: { cert: readFileSync(material.certFile), key: readFileSync(material.keyFile), minVersion: 'TLSv1.3' } })
    break
  default: {
    const tls = await loadServerTls(material)
    app = Fastify({ https: tls.httpsOptions })
    await app.register(fastifyMtls, { tls, watch: false })
    if (scenario.includes('identity')) await app.register(fastifyMtlsIdentity)
    if (scenario.includes('authz')) {
      await app.register(fastifyMtlsAuthz, {
        policy: { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['bench:read'] }] },
        allowLogLevel: 'trace'
      })
    }
  }
}

const route = scenario.includes('authz') ? { config: { mtls: { roles: ['bench:read'] } } } : {}
app.get('/', route, async request => scenario.includes('identity') ? { hello: request.peerIdentity?.id ?? 'world' } : { hello: 'world' })
await app.listen({ port: 0, host: '127.0.0.1' })
process.send({ port: app.server.address().port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
