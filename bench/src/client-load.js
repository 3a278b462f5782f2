// One client of the client bench, in a process of its own (pinned by client.js to the load core): `node client-load.js
// <kind>`, its certificates and the server's port sent over IPC. It answers each `{ op, ... }` message with its own CPU
// time over the window (process.cpuUsage(), read here, so neither IPC nor the bench process is counted), the operations
// done, and how many connections resumed a TLS session. Kinds: `undici` (a plain Agent with the same certificates and
// TLS options, as PEM: Node builds a secure context from them for every connection), `undici:shared-context` (a plain
// Agent given one secure context built once, as undici-mtls does: what is left is undici-mtls's own work),
// `undici-mtls` (createMtlsAgent's defaults), `undici-mtls+server` (with a SPIFFE ID server authorizer).
import { subscribe } from 'node:diagnostics_channel'
import { createSecureContext } from 'node:tls'
import { Agent, request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'

const kind = process.argv[2]
const SERVER_ID = 'spiffe://mycompany.com/production/payment-service'
const cpu = () => { const { user, system } = process.cpuUsage(); return user + system }

// Every connection undici opens, whichever agent (and whichever copy of undici) opened it: full or resumed.
const handshakes = { full: 0, resumed: 0 }
subscribe('undici:client:connected', ({ socket }) => { handshakes[socket.isSessionReused?.() === true ? 'resumed' : 'full']++ })

// `resume: false`: no TLS session kept, so every new connection is a full handshake; else each client's default.
async function agentFor ({ credentials, resume, connections }) {
  const sessions = resume ? {} : { maxCachedSessions: 0 }
  if (kind === 'undici') return new Agent({ connections, connect: { ...credentials, minVersion: 'TLSv1.3', servername: 'localhost', ...sessions } })
  if (kind === 'undici:shared-context') return new Agent({ connections, connect: { secureContext: createSecureContext({ ...credentials, minVersion: 'TLSv1.3' }), servername: 'localhost', ...sessions } })
  return await createMtlsAgent({ ...credentials, watch: false, agent: { connections }, ...sessions, ...(kind === 'undici-mtls+server' ? { server: SERVER_ID } : {}) })
}

// `concurrency` loops of one request each until `count` requests are answered; `newConnection`: each request closes
// its connection (`reset`: undici sends `connection: close`), so the next one opens another.
async function requests (url, dispatcher, count, concurrency, newConnection) {
  let started = 0
  let errors = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < count) {
      started++
      try {
        const response = await request(url, { dispatcher, reset: newConnection })
        await response.body.dump()
        if (response.statusCode !== 200) errors++
      } catch {
        errors++
      }
    }
  }))
  return { operations: count - errors, errors }
}

let setup = null
const agents = new Map()
process.on('message', async message => {
  if (message.setup !== undefined) {
    setup = message.setup
    process.send({ ready: true })
    return
  }
  if (message === 'exit') {
    await Promise.all([...agents.values()].map(agent => agent.close()))
    process.exit(0)
  }
  const { op, count, warmUp, concurrency } = message
  const resume = op !== 'full'
  const key = `${resume}`
  // One agent per setting, kept across windows: a keep-alive window reuses the connections the warm-up opened.
  if (!agents.has(key)) agents.set(key, await agentFor({ credentials: setup.credentials, resume, connections: concurrency }))
  const agent = agents.get(key)
  const url = `https://127.0.0.1:${setup.port}/`
  const newConnection = op !== 'keepAlive'
  if (warmUp > 0) await requests(url, agent, warmUp, concurrency, newConnection)
  const before = { cpu: cpu(), ...handshakes }
  const started = performance.now()
  const result = await requests(url, agent, count, concurrency, newConnection)
  const cpuUs = cpu() - before.cpu
  process.send({
    op,
    ...result,
    cpuUsPerOperation: result.operations === 0 ? null : cpuUs / result.operations,
    perSecond: result.operations / ((performance.now() - started) / 1000),
    full: handshakes.full - before.full,
    resumed: handshakes.resumed - before.resumed
  })
})
process.send({ started: true, node: process.versions.node, openssl: process.versions.openssl })
