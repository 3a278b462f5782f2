// A service that cannot get its SVID says why in one line on stderr and exits 1: no stack trace, no unhandled
// rejection. Three causes: SPIFFE_ENDPOINT_SOCKET is not set, nothing answers at the endpoint it names, or the agent
// sends X.509-SVIDs but no JWT bundles (the JWT-SVID hop cannot validate or be given a token without them).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { start } from './processes.js'
import { startTestWorkloadApi } from './workload-api.js'

const services = ['payment-service', 'order-service']
const escape = text => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

async function failedStart (t, service, env) {
  const run = start(t, `${service}.js`, { env: { HOST: '127.0.0.1', PORT: '0', PAYMENTS_URL: 'https://127.0.0.1:9', ...env } })
  const { code, signal } = await run.exit(`${service} to give up`)
  t.equal(code, 1, 'exit 1')
  t.equal(signal, null, 'not killed by a signal')
  t.same(run.stdout, [], 'nothing on stdout')
  t.equal(run.stderr.length, 1, `one line on stderr: ${run.stderr.join(' | ')}`)
  t.notMatch(run.stderr.join('\n'), /\n\s+at |Unhandled|node:internal/, 'no stack trace, no unhandled rejection')
  return run.stderr[0]
}

for (const service of services) {
  t.test(`${service} without SPIFFE_ENDPOINT_SOCKET`, async t => {
    const line = await failedStart(t, service, { SPIFFE_ENDPOINT_SOCKET: undefined })
    t.match(line, new RegExp(`^\\S+ ${service}: cannot start: ERR_MTLS_WORKLOAD_ENDPOINT_INVALID: no Workload API endpoint: .*SPIFFE_ENDPOINT_SOCKET$`))
  })

  t.test(`${service} with a Workload API endpoint where nothing listens`, async t => {
    const dir = await mkdtemp(join(tmpdir(), 'spire-example-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const socket = join(dir, 'agent.sock')
    // The wait an agent that starts at the same time is given (30 s by default), made short.
    const line = await failedStart(t, service, { SPIFFE_ENDPOINT_SOCKET: `unix://${socket}`, WORKLOAD_API_TIMEOUT_MS: '500' })
    t.match(line, new RegExp(`^\\S+ ${service}: cannot start: ERR_MTLS_WORKLOAD_TIMEOUT: no X\\.509-SVID from the Workload API at unix:${escape(socket)} within 500 ms \\(last error: .*cannot be reached`))
  })

  t.test(`${service} with X.509-SVIDs from the Workload API but no JWT bundles`, async t => {
    const { api } = await startTestWorkloadApi(t, { jwtBundles: false })
    const line = await failedStart(t, service, { SPIFFE_ENDPOINT_SOCKET: api.endpoint, WORKLOAD_API_TIMEOUT_MS: '500' })
    t.match(line, new RegExp(`^\\S+ ${service}: cannot start: ERR_MTLS_WORKLOAD_TIMEOUT: no JWT bundles from the Workload API at unix:\\S+ within 500 ms`))
  })
}
