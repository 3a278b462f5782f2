// One benchmark server, in a process of its own: `node server.js <scenario> <certificate directory> [log file]`.
// Reports its port, Node and OpenSSL versions over IPC, then answers `cpu` messages with its own CPU time
// (process.cpuUsage(), µs), so the bench divides the server's CPU, not the load generator's, by the work done.
// Every scenario answers GET / with the same small JSON. `behind-nginx` and `behind-haproxy` are the app behind
// those proxies: plain HTTP, the identity read from the certificate the proxy forwards, authz deciding a role.
// `mtls:ocsp-certs*`, `mtls+ocsp-stapling` and `mtls+revocation:*` are fastify-mtls on certificates that name an
// OCSP responder, without OCSP, stapling its own certificate's response, or checking each client certificate.
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { join } from 'node:path'
import Fastify from 'fastify'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'

const [scenario, dir, logFile] = process.argv.slice(2)
const file = name => join(dir, name)
// The OCSP scenarios serve a certificate that names the bench's OCSP responder (authorityInfoAccess), as a PKI that
// publishes OCSP issues them all; the same root verifies the clients.
const ocspFamily = /^mtls[:+](ocsp|revocation)/.test(scenario)
const material = ocspFamily
  ? { certFile: file('ocsp-server-chain.pem'), keyFile: file('ocsp-server-key.pem'), caFile: file('server-ca.pem') }
  : { certFile: file('server-chain.pem'), keyFile: file('server-key.pem'), caFile: file('server-ca.pem') }
const body = JSON.stringify({ hello: 'world' })
const cpu = () => { const { user, system } = process.cpuUsage(); return user + system }

// x509source scenarios: the same certificates pushed by a material feed (what a Workload API X509Source is), trust
// kept by trust domain: our own bundle alone, or with a federated one (each peer's chain then verified again, by domain).
function feed (federated) {
  const trustDomains = { 'mycompany.com': readFileSync(material.caFile, 'utf8'), ...(federated ? { 'partner.example': readFileSync(file('partner-ca.pem'), 'utf8') } : {}) }
  const materialInput = { cert: readFileSync(material.certFile, 'utf8'), key: readFileSync(material.keyFile, 'utf8'), trustDomains }
  const status = () => ({ endpoint: 'bench', connected: true, lastUpdate: null, reconnects: 0, lastError: null, closed: false })
  return Object.assign(new EventEmitter(), { materialInput, status })
}

let listen
switch (scenario) {
  case 'node-mtls':
  case 'node-mtls:x25519':
  case 'node-mtls:x25519mlkem768': {
    // node:https with the TLS options fastify-mtls would use: the floor any Node server pays. The key-exchange pair
    // differs by the group alone: X25519 only, or requirePostQuantum (the client offers X25519MLKEM768 first).
    const keyExchange = scenario === 'node-mtls:x25519' ? { tlsOptions: { ecdhCurve: 'X25519' } } : scenario === 'node-mtls:x25519mlkem768' ? { requirePostQuantum: true } : {}
    const { httpsOptions } = await loadServerTls({ ...material, ...keyExchange })
    const server = createServer(httpsOptions, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      response.end(body)
    })
    listen = async () => { server.listen(0, '127.0.0.1'); await new Promise(resolve => server.once('listening', resolve)); return server }
    break
  }
  default: {
    let app
    if (scenario === 'http') app = Fastify()
    else if (scenario === 'tls') app = Fastify({ https: { cert: readFileSync(material.certFile), key: readFileSync(material.keyFile), minVersion: 'TLSv1.3' } })
    else if (scenario.startsWith('behind-')) {
      // Behind a proxy that terminated mTLS: plain HTTP from the proxy's address (the cheapest realistic shape),
      // the client's certificate in a header, verified again as in production. The header carries the leaf
      // alone, so `ca` holds the intermediate that issues client certificates as well as the root.
      app = Fastify()
      await app.register(fastifyMtlsIdentity, {
        trustedProxies: { addresses: ['127.0.0.1'] },
        forwarded: scenario === 'behind-nginx' ? 'nginx' : { header: 'x-ssl-client-cert', format: 'base64-der' },
        verifyForwarded: true,
        ca: [readFileSync(material.caFile, 'utf8'), readFileSync(file('intermediate.pem'), 'utf8')]
      })
    } else {
      const tls = await loadServerTls(scenario.startsWith('x509source') ? { x509Source: feed(scenario.startsWith('x509source-federated')) } : material)
      // The production-like variant logs every request and every audit line at info, to a file.
      const logger = scenario.endsWith('+logger') ? { level: 'info', file: logFile } : false
      app = Fastify({ https: tls.httpsOptions, logger })
      // fastify-tls-options: Fastify with the same TLS options and no plugin, to isolate the plugins' cost.
      // The OCSP family: stapling of the server's own certificate, or OCSP checks of each client certificate at its
      // first handshake (cached by fingerprint until the answer's nextUpdate). Both fail closed by default: a server
      // whose staple or lookups failed would not start, or would refuse the load, rather than measure nothing.
      const ocsp = scenario === 'mtls+ocsp-stapling' ? { ocspStapling: true } : scenario.startsWith('mtls+revocation') ? { revocation: { ocsp: true } } : {}
      if (scenario !== 'fastify-tls-options') await app.register(fastifyMtls, { tls, watch: false, ...ocsp })
      if (scenario.includes('identity')) await app.register(fastifyMtlsIdentity)
    }
    const authz = scenario.includes('authz') || scenario.startsWith('behind-')
    if (authz) {
      await app.register(fastifyMtlsAuthz, {
        policy: { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['bench:read'] }] },
        ...(scenario.endsWith('+logger') ? {} : { allowLogLevel: 'trace' })
      })
    }
    const route = authz ? { config: { mtls: { roles: ['bench:read'] } } } : {}
    const readsIdentity = scenario.includes('identity') || scenario.startsWith('behind-')
    app.get('/', route, async request => readsIdentity ? { hello: request.peerIdentity?.id ?? 'world' } : { hello: 'world' })
    listen = async () => { await app.listen({ port: 0, host: '127.0.0.1' }); return app.server }
  }
}

const server = await listen()
process.on('message', message => { if (message === 'cpu') process.send({ cpu: cpu() }) })
process.send({ port: server.address().port, node: process.versions.node, openssl: process.versions.openssl })
process.on('SIGTERM', () => { server.close(); process.exit(0) }); process.on('SIGINT', () => { server.close(); process.exit(0) })
