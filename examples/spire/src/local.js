// The two services by hand, with no docker and no SPIRE: spiffe-workload-api's test Workload API server stands in
// for the SPIRE agent, on a Unix socket in a temporary directory, with SVIDs from a CA that mtls-pki makes now (a
// SPIFFE ID and no DNS name, 5 minutes, as register.sh's entries). Both services run as the compose file runs
// them, as processes with SPIFFE_ENDPOINT_SOCKET set, and their lines are passed through. New SVIDs are pushed
// every ROTATE_INTERVAL_MS (30 s; 0 for never), as the agent renews them. Ctrl-C (SIGINT) or SIGTERM stops the
// services, then the server, and exits 0; `--once` stops after the first successful charge.
//
//   npx --yes pnpm@10.34.9 --filter spire-example start:local [-- --once]     (or: node src/local.js [--once])
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { CertificateAuthority } from 'mtls-pki'
import { TestWorkloadApi, svidMessage } from 'spiffe-workload-api/testing'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from './identities.js'
import { log, logError } from './svid-log.js'

const once = process.argv.includes('--once')
const rotateMs = Number(process.env.ROTATE_INTERVAL_MS ?? 30_000)
const SVID_TTL_MS = 5 * 60_000

let api = null
let rotation = null
let stopping = null
const services = []

// Ctrl-C reaches every process of the terminal's group: the services close themselves, and pnpm above us sends
// SIGINT then SIGTERM again. stop() runs once and waits for the services whichever signal they got.
process.on('SIGINT', () => stop(0, 'SIGINT'))
process.on('SIGTERM', () => stop(0, 'SIGTERM'))

/** Stops the services (SIGTERM, SIGKILL after 5 s), then the server; exits `code`, or 1 if a service failed to stop. */
function stop (code, why) {
  stopping ??= (async () => {
    log(`local: ${why}, stopping`)
    clearInterval(rotation)
    const codes = await Promise.all(services.map(async service => {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill('SIGTERM')
        const late = setTimeout(() => service.child.kill('SIGKILL'), 5000)
        await service.exited.finally(() => clearTimeout(late))
      }
      return service.exited
    }))
    await api?.close()
    const failed = codes.some(exitCode => exitCode !== 0)
    log(`local: stopped${failed ? ` (exit codes ${codes.join(', ')})` : ''}`)
    process.exit(failed ? 1 : code)
  })()
  return stopping
}

/** Runs `src/<name>.js`; passes its lines through; `onLine` sees each. A service that ends on its own ends the run. */
function startService (name, env, onLine) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${name}.js`, import.meta.url))], {
    env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: api.endpoint, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise(resolve => child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal)))
  createInterface({ input: child.stdout }).on('line', line => { console.log(line); onLine(line) })
  createInterface({ input: child.stderr }).on('line', line => console.error(line))
  exited.then(result => { if (stopping === null) stop(1, `${name} exited (${result})`) })
  services.push({ child, exited })
  log(`local: started ${name} (pid ${child.pid})`)
  return exited
}

/** An X509SVIDResponse with both SVIDs: this server answers every caller alike, and each service picks its own. */
async function svids (ca) {
  const notAfter = new Date(Date.now() + SVID_TTL_MS)
  const issue = spiffeId => ca.issue({ spiffeId, usage: 'both', notAfter }).then(issued => svidMessage(spiffeId, issued))
  return { svids: await Promise.all([issue(PAYMENT_SERVICE_ID), issue(ORDER_SERVICE_ID)]) }
}

try {
  const ca = await CertificateAuthority.createRoot({ commonName: `${TRUST_DOMAIN} local SVID CA` })
  api = await TestWorkloadApi.start()
  api.setX509(await svids(ca))
  log(`local: test Workload API on ${api.endpoint}, serving SVIDs for ${PAYMENT_SERVICE_ID} and ${ORDER_SERVICE_ID}`)
  if (!once && rotateMs > 0) {
    rotation = setInterval(() => {
      svids(ca).then(response => {
        log('local: pushing new SVIDs, as the agent renews them')
        api.setX509(response)
      }, err => logError(`local: cannot issue new SVIDs: ${err.message}`))
    }, rotateMs)
  }

  const listening = new Promise(resolve => {
    startService('payment-service', { HOST: '127.0.0.1', PORT: process.env.PORT ?? '0' }, line => {
      const match = /payment-service: listening on (https:\/\/\S+) as /.exec(line)
      if (match !== null) resolve(match[1])
    })
  })
  const paymentsUrl = await listening

  let charged = false
  startService('order-service', { PAYMENTS_URL: paymentsUrl }, line => {
    if (charged || !/order-service: order-\d+: 200 from /.test(line)) return
    charged = true
    log(`local: mTLS call succeeded: ${ORDER_SERVICE_ID} charged ${PAYMENT_SERVICE_ID}, both on SVIDs from the Workload API`)
    if (once) stop(0, '--once')
    else log('local: running until Ctrl-C')
  })
} catch (err) {
  logError(`local: cannot start: ${err.code ?? err.name}: ${err.message}`)
  stop(1, 'failed')
}
