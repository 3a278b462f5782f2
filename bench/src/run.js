// `pnpm bench` (several minutes), `pnpm bench --quick` (about a minute), `pnpm bench --smoke` (the pnpm test
// check, seconds), `pnpm bench --node 24` (the server scenarios on Node 24 too, side by side; any major of
// scripts/runtimes.mjs), `--scenarios a,b` (only those), `--out DIR`, `--help`. Each server runs in a process of its own
// (a proxy scenario: the proxy and the app behind it), pinned to core 0 where taskset exists, while the load
// runs here on core 1. The headline figure is the server's own CPU time per operation (read
// from the server process around each measured window): on two cores one load process cannot saturate a
// TLS server, so requests per second measure the client and are kept as secondary columns.
import { execFile, execFileSync, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { nodeBinary } from '../../scripts/runtimes.mjs'
import { chartSvg } from './chart.js'
import { clientContext, newConnections } from './new-connections.js'
import { machineOf, round2, roundSpread, writeResults } from './report.js'
import { BASELINES, HEADLINE, calibrate, median, pairedRatios, resultsName, spread } from './rounds.js'

const NGINX = 'nginx-mtls'
// The OCSP family (issue 27): fastify-mtls on certificates that name the bench's OCSP responder (mtls-pki's: OpenSSL's
// `openssl ocsp` behind a Node HTTP server in this process, on 127.0.0.1), the load's client asking for a staple on every
// connection. `mtls:ocsp-certs` is their baseline (no OCSP feature on); `unseen` scenarios present, on each new
// connection, a client certificate the server has not seen (issued before the run), and measure full handshakes only.
const OCSP_SCENARIOS = ['mtls:ocsp-certs', 'mtls+ocsp-stapling', 'mtls+revocation:cached', 'mtls:ocsp-certs:unseen', 'mtls+revocation:uncached']
const UNSEEN = new Set(['mtls:ocsp-certs:unseen', 'mtls+revocation:uncached'])
const NODE_SCENARIOS = ['http', 'tls', 'node-mtls', 'node-mtls:x25519', 'node-mtls:x25519mlkem768', 'fastify-tls-options', 'mtls', 'mtls+identity', 'mtls+identity+authz', 'mtls+identity+authz+logger', 'x509source:mtls+identity+authz', 'x509source-federated:mtls+identity+authz', ...OCSP_SCENARIOS]
// `--scenarios ocsp` names the whole family.
const GROUPS = { ocsp: OCSP_SCENARIOS }
// The key-exchange pair: the group each must agree (checked once per server), and which needs the hybrid groups
// (OpenSSL 3.5+, in the server's Node and in this process, the load generator's).
const KEY_EXCHANGES = { 'node-mtls:x25519': { group: 'X25519', hybrid: false }, 'node-mtls:x25519mlkem768': { group: 'X25519MLKEM768', hybrid: true } }
// A proxy terminating mTLS: answering itself (`app: null`), or in front of a server.js scenario over plain HTTP,
// whose CPU is counted with the proxy's.
const PROXIES = {
  [NGINX]: { proxy: 'nginx', app: null },
  'nginx-mtls->http': { proxy: 'nginx', app: 'http' },
  'nginx-mtls->fastify-identity': { proxy: 'nginx', app: 'behind-nginx' },
  'haproxy-mtls->fastify-identity': { proxy: 'haproxy', app: 'behind-haproxy' }
}
const SCENARIO_NAMES = [...NODE_SCENARIOS, ...Object.keys(PROXIES)]
// Families measured by scripts of their own, each writing `<run>.<family>.{json,md}` beside the run's files (issue 29):
// the client's CPU (undici-mtls against plain undici, client.js) and fastify-mtls-authz with big policies (policies.js).
// Named in --scenarios, or in a quick or full run of everything; a smoke run of everything leaves them to their own tests.
const FAMILIES = { client: 'client.js', policies: 'policies.js' }
// A misspelt name would leave a scenario without its ratio, silently.
for (const [scenario, baseline] of Object.entries(BASELINES)) if (!SCENARIO_NAMES.includes(scenario) || !SCENARIO_NAMES.includes(baseline)) throw new Error(`bench: baseline ${scenario} -> ${baseline} names no scenario`)
const USAGE = 'usage: pnpm bench [--quick | --smoke] [--node MAJOR]... [--scenarios a,b] [--out DIR] [--help]'
const HELP = `${USAGE}

Server CPU per operation (keep-alive request, full and resumed handshake + request) of each scenario, in rounds
that alternate their order; each scenario's ratio to its baseline is paired round by round.

  (no flag)         the full run: 3 rounds, about 10 minutes per Node; writes results/latest.{json,md,svg}
  --quick           one short round, about a minute, noisy; writes results/quick.*
  --smoke           seconds, fixed counts of work (what pnpm test runs); writes results/smoke.*
  --node MAJOR      the Node server scenarios again on that Node major, side by side (repeatable)
  --scenarios a,b   only those scenarios (quote names with >), no client or import figures;
                    a full run of some scenarios writes results/partial.*, never latest.*;
                    'ocsp' names the OCSP family: ${OCSP_SCENARIOS.join(', ')};
                    'client': the client's own CPU, undici-mtls against plain undici (results/<run>.client.*);
                    'policies': fastify-mtls-authz with 1,000 routes and 10,000 ACL entries (results/<run>.policies.*);
                    both run in a quick or full run of everything too
  --out DIR         write into DIR instead of bench/results
  -h, --help        this text

scenarios: ${[...SCENARIO_NAMES, ...Object.keys(FAMILIES)].join(', ')}`

const args = readArguments(process.argv.slice(2))
const mode = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full'
const outDir = args.out ?? fileURLToPath(new URL('../results', import.meta.url))
const extraNodes = args.node ?? []
// Windows are bounded in time and in count; smoke windows are counted only (however busy the machine, each
// scenario does the same work, and a slow request is waited for, not an error), so every scenario is measured in
// seconds. `verifies`: the calibration's batch.
// `unseen`: the client certificates issued before the run for the `unseen` scenarios, each presented once a round
// (every round starts new servers, whose caches are empty): `measured`, the most new connections of their window, and
// `warmUp`, others presented before it, unmeasured, so that the window finds the lookup path's JIT settled as in a
// server that has met clients before (the first few dozen lookups cost several times what later ones do).
const PLANS = {
  smoke: { rounds: 1, warmUp: null, keepAlive: { amount: 200, sampleInt: 50, timeout: 60 }, connections: { maxConnections: 12, concurrency: 4 }, unseen: { measured: 12, warmUp: 0 }, client: null, loadConnections: 8, importSamples: 1, verifies: 20 },
  quick: { rounds: 1, warmUp: null, keepAlive: { duration: 1 }, connections: { durationMs: 700 }, unseen: { measured: 100, warmUp: 30 }, client: 700, loadConnections: 20, importSamples: 3, verifies: 200 },
  full: { rounds: 3, warmUp: { duration: 1 }, keepAlive: { duration: 5 }, connections: { durationMs: 3000 }, unseen: { measured: 300, warmUp: 100 }, client: 3000, loadConnections: 50, importSamples: 5, verifies: 500 }
}
const plan = PLANS[mode]
// A run of some scenarios only measures those: no client comparison, no import times, and not `latest`.
const partial = args.scenarios !== undefined
const outName = resultsName(mode, partial)

const isProxy = scenario => Object.hasOwn(PROXIES, scenario)
const binaryOnPath = name => { try { return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null } catch { return null } }
const proxyBinaries = { nginx: binaryOnPath('nginx'), haproxy: binaryOnPath('haproxy') }
// mtls-pki's OCSP responder runs the openssl command for each request.
const opensslBinary = binaryOnPath('openssl')
const named = args.scenarios?.split(',').flatMap(name => GROUPS[name] ?? [name])
const isFamily = name => Object.hasOwn(FAMILIES, name)
const families = named === undefined ? (mode === 'smoke' ? [] : Object.keys(FAMILIES)) : named.filter(isFamily)
// Families alone: no server scenario runs.
const only = named?.filter(name => !isFamily(name))
const unknown = only?.filter(scenario => !NODE_SCENARIOS.includes(scenario) && !isProxy(scenario)) ?? []
if (unknown.length > 0) {
  console.error(`bench: unknown scenario ${unknown.join(', ')}; the scenarios are ${[...SCENARIO_NAMES, ...Object.keys(FAMILIES)].join(', ')}`)
  process.exit(2)
}
// A family's script, in a process of its own (it pins its own processes), writing beside this run's files.
async function runFamily (family) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${FAMILIES[family]}`, import.meta.url)), ...(mode === 'full' ? [] : [`--${mode}`]), '--out', outDir, '--name', outName], { stdio: 'inherit' })
  const [code, signal] = await once(child, 'exit')
  if (code !== 0) throw new Error(`bench: the ${family} scenario failed (${signal ?? code})`)
}
if (only !== undefined && only.length === 0) {
  for (const family of families) await runFamily(family)
  process.exit(0)
}
// Loaded once the flags are read: --help and a misspelt flag or scenario answer without them (a second on a busy machine).
const [{ default: autocannon }, { createTestPki, writeCertificateFiles }, { Agent, request }, { createMtlsAgent }] =
  await Promise.all([import('autocannon'), import('mtls-pki'), import('undici'), import('undici-mtls')])
const wanted = scenario => only === undefined || only.includes(scenario)
const isOcsp = scenario => OCSP_SCENARIOS.includes(scenario)
const installed = scenario => isProxy(scenario) ? proxyBinaries[PROXIES[scenario].proxy] !== null : !isOcsp(scenario) || opensslBinary !== null
const SCENARIOS = SCENARIO_NAMES.filter(scenario => wanted(scenario) && installed(scenario))
const skipped = SCENARIO_NAMES.filter(scenario => wanted(scenario) && !installed(scenario))
  .map(scenario => ({ scenario, reason: isProxy(scenario) ? `no ${PROXIES[scenario].proxy} binary on the PATH (apt-get install ${PROXIES[scenario].proxy})` : 'no openssl binary on the PATH, which the OCSP responder runs (apt-get install openssl)' }))
const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' })
const CLOCK_TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100)

const runtimes = [{ node: process.versions.node, execPath: process.execPath }]
for (const major of extraNodes) runtimes.push({ major, execPath: await nodeBinary(major) })
// Whether a Node's OpenSSL has the hybrid post-quantum groups, asked of it (as mtls-core does), not read from its version.
const HYBRID_PROBE = "try { require('node:tls').createSecureContext({ ecdhCurve: 'X25519MLKEM768' }) } catch { process.exit(1) }"
for (const runtime of runtimes) runtime.hybrid = await promisify(execFile)(runtime.execPath, ['-e', HYBRID_PROBE]).then(() => true, () => false)
// A scenario that needs them runs on a Node that has them, and only when the load generator (this process) has them too.
const runsOn = (scenario, runtime) => KEY_EXCHANGES[scenario]?.hybrid !== true || (runtime.hybrid && runtimes[0].hybrid)
for (const scenario of SCENARIOS.filter(name => KEY_EXCHANGES[name]?.hybrid === true)) {
  const without = runtimes.filter(runtime => !runsOn(scenario, runtime))
  if (without.length === 0) continue
  const reason = !runtimes[0].hybrid
    ? `the load generator's Node ${process.versions.node} (OpenSSL ${process.versions.openssl}) offers no hybrid post-quantum group: run the bench on Node 22.20+ or 24.5+`
    : `Node ${without.map(runtime => runtime.major).join(', ')} offers no hybrid post-quantum group (OpenSSL 3.5+ needed)`
  skipped.push({ scenario, reason })
}

// How busy the machine was around the run (other jobs share it), and how long the run took.
const startedAt = { time: Date.now(), loadAverage: loadavg() }
const dir = await mkdtemp(join(tmpdir(), 'mtls-bench-'))
const pki = await createTestPki()
await writeCertificateFiles(dir, 'server', pki.server)
// What the proxies need beside: HAProxy's chain and key in one file; the intermediate for the apps behind them.
await writeFile(join(dir, 'haproxy-server.pem'), `${pki.server.chain.trimEnd()}\n${pki.server.key.trimEnd()}\n`, { mode: 0o600 })
await writeFile(join(dir, 'intermediate.pem'), pki.intermediate.certificate)
// A federated trust domain's root, for the x509Source scenario with federated bundles.
await writeFile(join(dir, 'partner-ca.pem'), (await createTestPki({ trustDomain: 'partner.example' })).ca)
const credentials = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key }
const CLIENT_ID = 'spiffe://mycompany.com/production/order-service'

// The OCSP family's PKI: the intermediate's OCSP responder (its own key signs the answers; each request runs `openssl
// ocsp` in a process of its own, beside this one on the load's core: none of it is counted in the server's CPU), a
// server certificate and the client's naming it, and the unseen scenarios' client certificates with their contexts.
let ocsp = null
if (SCENARIOS.some(isOcsp)) {
  const responder = await pki.intermediate.startOcspResponder()
  const ocspUrl = responder.url
  const server = await pki.intermediate.issue({ usage: 'server', commonName: 'localhost', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'], ocspUrl })
  await writeCertificateFiles(dir, 'ocsp-server', server)
  const client = await pki.intermediate.issue({ usage: 'client', spiffeId: CLIENT_ID, ocspUrl })
  const contexts = []
  const needed = SCENARIOS.some(scenario => UNSEEN.has(scenario)) ? plan.unseen.measured + plan.unseen.warmUp : 0
  for (let i = 0; i < needed; i++) {
    const issued = await pki.intermediate.issue({ usage: 'client', spiffeId: `spiffe://mycompany.com/production/order-service-${i}`, ocspUrl })
    contexts.push(clientContext({ ca: pki.ca, cert: issued.chain, key: issued.key }))
  }
  // Every issue() rewrote the index already; awaited once more so the responder knows the last of them.
  await responder.refresh()
  ocsp = { responder, credentials: { ca: pki.ca, cert: client.chain, key: client.key }, unseen: contexts.slice(0, plan.unseen.measured), warmUp: contexts.slice(plan.unseen.measured) }
}

const perRound = runtimes.reduce((sum, runtime) => sum + SCENARIOS.filter(scenario => runsOn(scenario, runtime)).length, 0) - (SCENARIOS.includes(NGINX) ? runtimes.length - 1 : 0) + (plan.client === null || partial ? 0 : 1)
const steps = plan.rounds * perRound + (partial ? 0 : 1)
let done = 0
const progress = label => {
  done++
  const width = 30
  const filled = Math.round(width * done / steps)
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${steps} ${label.padEnd(48)}`)
}

// A Node server process, and its CPU time over IPC.
async function startNode (scenario, runtime) {
  const script = fileURLToPath(new URL('./server.js', import.meta.url))
  const argv = [scenario, dir, join(dir, `${scenario.replaceAll(/[^a-z]/g, '-')}.log`)]
  const child = hasTaskset
    ? fork(script, argv, { execPath: 'taskset', execArgv: ['-c', '0', runtime.execPath], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : fork(script, argv, { execPath: runtime.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  // A server that fails to start exits: reported at once rather than awaited for ever.
  const exited = once(child, 'exit').then(([code, signal]) => { throw new Error(`${scenario}: the server exited (${signal ?? code}) before it listened`) })
  exited.catch(() => {}) // after a start, its stop() is what ends the child
  const [{ port, node, openssl }] = await Promise.race([once(child, 'message'), exited])
  if (KEY_EXCHANGES[scenario] !== undefined) await checkKeyExchange(scenario, port).catch(err => { child.kill('SIGTERM'); throw err })
  const cpu = async () => {
    child.send('cpu')
    for (;;) {
      const [message] = await once(child, 'message')
      if (message.cpu !== undefined) return message.cpu
    }
  }
  return { port, node, openssl, cpu, stop: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

async function freePort () {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address()
  probe.close()
  return port
}

// CPU time of a process and all its descendants (nginx's master and workers), µs: utime + stime, fields 14
// and 15 of /proc/PID/stat, in clock ticks.
async function processTreeCpu (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
  let cpu = (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim()
  for (const child of children === '' ? [] : children.split(' ')) cpu += await processTreeCpu(child)
  return cpu
}

// Until the proxy accepts connections or exits; the caller stops it on failure (SIGTERM, so nginx takes its worker
// along). The limit only turns a hang into an error: a busy machine may take seconds to start it.
async function waitForPort (port, child, output, label) {
  const hang = Date.now() + 60_000
  while (Date.now() < hang) {
    if (child.exitCode !== null) break
    const up = await new Promise(resolve => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (up) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${label} did not listen on port ${port}: ${output().trim() || `exit code ${child.exitCode}`}`)
}

// nginx as deployed: a master and one worker, both pinned to the server core (a fork inherits taskset's
// affinity); with an app, proxying with keep-alive to it, and forwarding the client certificate where the app reads it.
function nginxConfig (name, port, upstream, app) {
  const forward = app === 'behind-nginx' ? ' proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;' : ''
  const answer = upstream === null
    ? 'location / { default_type application/json; return 200 \'{"hello":"world"}\'; }'
    : `location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";${forward} }`
  return `worker_processes 1;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  ${upstream === null ? '' : `upstream app { server 127.0.0.1:${upstream.port}; keepalive 64; }`}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${join(dir, 'server-chain.pem')};
    ssl_certificate_key ${join(dir, 'server-key.pem')};
    ssl_client_certificate ${join(dir, 'server-ca.pem')};
    ssl_verify_client on;
    ssl_session_cache shared:SSL:10m;
    ${answer}
  }
}
`
}

// HAProxy with one thread; `http-reuse always` shares idle app connections between clients as nginx's upstream
// keepalive does (safe here: the app decides the identity per request, from the header HAProxy sets).
function haproxyConfig (port, upstream) {
  return `global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend mtls
  bind 127.0.0.1:${port} ssl crt ${join(dir, 'haproxy-server.pem')} ca-file ${join(dir, 'server-ca.pem')} verify required ssl-min-ver TLSv1.3
  http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64]
  default_backend app
backend app
  server app 127.0.0.1:${upstream.port}
`
}

// A proxy scenario: the proxy (and the app behind it, if any), its CPU and the app's summed.
async function startProxy (scenario, runtime) {
  const { proxy, app } = PROXIES[scenario]
  const upstream = app === null ? null : await startNode(app, runtime)
  const port = await freePort()
  const name = scenario.replaceAll(/[^a-z]/g, '-')
  const conf = join(dir, `${name}.conf`)
  await writeFile(conf, proxy === 'nginx' ? nginxConfig(name, port, upstream, app) : haproxyConfig(port, upstream))
  const proxyArgs = proxy === 'nginx' ? ['-p', dir, '-c', conf, '-g', 'daemon off;'] : ['-f', conf, '-db']
  const binary = proxyBinaries[proxy]
  // taskset execs the proxy in place: the pid is the proxy's.
  const child = hasTaskset ? spawn('taskset', ['-c', '0', binary, ...proxyArgs], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(binary, proxyArgs, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    await upstream?.stop()
  }
  try {
    await waitForPort(port, child, () => stderr, `${scenario}: ${proxy}`)
    if (app?.startsWith('behind-')) await checkForwardedIdentity(scenario, port)
  } catch (err) {
    await stop()
    throw err
  }
  const version = proxyVersion(proxy)
  return {
    port,
    node: upstream === null ? null : upstream.node,
    openssl: upstream === null ? version : `${version}, upstream Node ${upstream.node}`,
    cpu: async () => await processTreeCpu(child.pid) + (upstream === null ? 0 : await upstream.cpu()),
    // The proxy's own part, reported beside the sum where an app runs behind it.
    proxyCpu: upstream === null ? undefined : async () => await processTreeCpu(child.pid),
    stop
  }
}

// A proxy scenario that served refusals would measure nothing: one request must reach the route with the
// client's identity, forwarded by the proxy and verified by the app.
async function checkForwardedIdentity (scenario, port) {
  const agent = new Agent({ connect: { ...credentials, servername: 'localhost' } })
  try {
    const response = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent })
    const body = await response.body.text()
    if (response.statusCode !== 200 || JSON.parse(body).hello !== CLIENT_ID) {
      throw new Error(`${scenario}: the app behind the proxy did not see the client's identity (${response.statusCode} ${body})`)
    }
  } finally {
    await agent.close()
  }
}

// The key-exchange pair measures nothing unless each server agrees its group with the load's client (the same secure
// context new-connections.js uses: Node's default groups). Node 22 names no hybrid group (`{}`): there, not X25519.
async function checkKeyExchange (scenario, port) {
  const { group: expected } = KEY_EXCHANGES[scenario]
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...credentials, minVersion: 'TLSv1.3' })
  try {
    await once(socket, 'secureConnect')
    const agreed = socket.getEphemeralKeyInfo()?.name
    if (agreed === undefined ? expected === 'X25519' : agreed !== expected) throw new Error(`${scenario}: the server agreed ${agreed ?? 'a group Node does not name'}, not ${expected}`)
  } finally {
    socket.destroy()
  }
}

// nginx and HAProxy print their versions on stderr.
function proxyVersion (proxy) {
  const output = execFileSync('sh', ['-c', `${proxyBinaries[proxy]} -v 2>&1`], { encoding: 'utf8' })
  return proxy === 'nginx' ? `nginx ${/nginx\/([\d.]+)/.exec(output)?.[1] ?? ''}`.trim() : `HAProxy ${/version ([\d.]+)/.exec(output)?.[1] ?? ''}`.trim()
}

async function startServer (scenario, runtime) {
  return isProxy(scenario) ? await startProxy(scenario, runtime) : await startNode(scenario, runtime)
}

// Server CPU µs per operation over one window, and what the client saw.
async function measured (server, work) {
  const read = async () => [await server.cpu(), await server.proxyCpu?.()]
  const [before, proxyBefore] = await read()
  const result = await work()
  const [after, proxyAfter] = await read()
  const perOperation = (from, to) => from === undefined || result.operations === 0 ? null : (to - from) / result.operations
  return { ...result, cpuUsPerOperation: perOperation(before, after), proxyCpuUsPerOperation: perOperation(proxyBefore, proxyAfter) }
}

async function keepAlive (scenario, server) {
  const secure = scenario !== 'http'
  const options = {
    url: `${secure ? 'https' : 'http'}://127.0.0.1:${server.port}/`,
    connections: plan.loadConnections,
    ...(secure ? { tlsOptions: clientCredentials(scenario) } : {})
  }
  if (plan.warmUp !== null) await autocannon({ ...options, ...plan.warmUp }) // let the JIT settle
  return await measured(server, async () => {
    const result = await autocannon({ ...options, ...plan.keepAlive })
    return { operations: result.requests.total, requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
  })
}

// What the load presents: nothing but trust to the TLS-only server; the OCSP family's client certificate to those.
const clientCredentials = scenario => scenario === 'tls' ? { ca: pki.ca } : isOcsp(scenario) ? ocsp.credentials : credentials

// `unmeasured` (the window's bounds): connections not measured, made with the one client certificate. The OCSP family
// asks for a staple on every connection, and counts the requests the responder answered during the window.
async function connections (scenario, server, resume, unmeasured = null) {
  const secure = scenario !== 'http'
  const options = {
    port: server.port,
    secure,
    credentials: clientCredentials(scenario),
    requestOCSP: isOcsp(scenario),
    resume,
    ...(unmeasured ?? plan.connections),
    ...(UNSEEN.has(scenario) && unmeasured === null ? { contexts: ocsp.unseen } : {})
  }
  if (unmeasured !== null) return await newConnections(options)
  return await measured(server, async () => {
    const answered = ocsp?.responder.answered ?? 0
    const result = await newConnections(options)
    return { ...result, operations: result.completed, ocspLookups: isOcsp(scenario) ? ocsp.responder.answered - answered : null }
  })
}

async function clientThroughput (port, dispatcher, durationMs) {
  let completed = 0
  const end = Date.now() + durationMs
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (Date.now() < end) {
      const response = await request(`https://127.0.0.1:${port}/`, { dispatcher })
      await response.body.dump()
      completed++
    }
  }))
  return completed / (durationMs / 1000)
}

// Time to import each built package in a fresh process, median of a few (the cost every user pays at start).
async function importTimes () {
  const packages = ['mtls-core', 'mtls-pki', 'fastify-mtls', 'fastify-mtls-identity', 'fastify-mtls-authz', 'undici-mtls']
  const run = promisify(execFile)
  const times = {}
  for (const name of packages) {
    const samples = []
    for (let i = 0; i < plan.importSamples; i++) {
      const entry = new URL(`../../packages/${name}/dist/index.js`, import.meta.url).href
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(entry)}); console.log(performance.now() - t)`])
      samples.push(Number(stdout.trim()))
    }
    times[name] = Math.round(median(samples) * 10) / 10
  }
  return times
}

// Every round's figure, by round: samples.get(key)[round].
const samples = new Map()
const record = (key, round, value) => { if (!samples.has(key)) samples.set(key, []); samples.get(key)[round] = value }
const versions = new Map()
const calibrations = []

for (let round = 0; round < plan.rounds; round++) {
  // Before the round's servers start, so nothing else of the bench's runs beside it.
  calibrations[round] = calibrate(plan.verifies)
  for (const runtime of runtimes) {
    // nginx answering itself does not depend on Node: measured with the first runtime only.
    const order = (round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse()).filter(scenario => (scenario !== NGINX || runtime === runtimes[0]) && runsOn(scenario, runtime))
    // Started together (idle servers cost nothing), measured one at a time.
    const started = await Promise.allSettled(order.map(scenario => startServer(scenario, runtime)))
    const failed = started.find(outcome => outcome.status === 'rejected')
    if (failed !== undefined) {
      await Promise.all(started.filter(outcome => outcome.status === 'fulfilled').map(outcome => outcome.value.stop()))
      throw failed.reason
    }
    const servers = started.map(outcome => outcome.value)
    try {
      for (const [index, scenario] of order.entries()) {
        progress(`round ${round + 1}: ${scenario}${runtime === runtimes[0] ? '' : ` (Node ${runtime.major})`}`)
        const server = servers[index]
        const key = `${scenario}|${runtime.execPath}`
        versions.set(key, { node: server.node, openssl: server.openssl })
        // The OCSP family's first connection, not measured, in every mode: it loads fastify-mtls's OCSP code (the ASN.1
        // schemas) and, with revocation, makes the one client certificate's lookup, so that `cached` is cached and an
        // `uncached` window pays its lookups, not the module's first load.
        if (isOcsp(scenario)) await connections(scenario, server, false, { maxConnections: 1 })
        // An unseen scenario measures first connections of certificates only: a keep-alive or resumed window would
        // measure one certificate, seen before. Its warm-up, in place of the keep-alive window's: certificates of its
        // own (bounded in time too: a lookup each).
        if (!UNSEEN.has(scenario)) record(`${key}|keepAlive`, round, await keepAlive(scenario, server))
        else if (ocsp.warmUp.length > 0) await connections(scenario, server, false, { contexts: ocsp.warmUp, durationMs: 10_000 })
        record(`${key}|full`, round, await connections(scenario, server, false))
        if (scenario !== 'http' && !UNSEEN.has(scenario)) record(`${key}|resumed`, round, await connections(scenario, server, true))
      }
    } finally {
      await Promise.all(servers.map(server => server.stop()))
    }
  }
  if (plan.client !== null && !partial) {
    progress(`round ${round + 1}: undici clients`)
    const server = await startNode('mtls', runtimes[0])
    const plain = new Agent({ connections: 16, connect: { ...credentials, servername: 'localhost' } })
    const mtls = await createMtlsAgent({ ...credentials, server: 'spiffe://mycompany.com/production/payment-service', agent: { connections: 16 } })
    try {
      const clients = round % 2 === 0 ? [['undici', plain], ['undici-mtls', mtls]] : [['undici-mtls', mtls], ['undici', plain]]
      for (const [, dispatcher] of clients) await clientThroughput(server.port, dispatcher, 300) // warm-up: connections and JIT
      for (const [name, dispatcher] of clients) record(`client|${name}`, round, await clientThroughput(server.port, dispatcher, plan.client))
    } finally {
      await plain.close()
      await mtls.close()
      await server.stop()
    }
  }
}
let importMs = null
if (!partial) {
  progress('import times')
  importMs = await importTimes()
}
process.stderr.write('\n')
await ocsp?.responder.close()
await rm(dir, { recursive: true, force: true })

// Figures kept to 0.01 µs (the JSON is read by people too); ratios to 0.0001.
const round4 = value => value === null ? null : Math.round(value * 10000) / 10000
const roundsOf = (key, name) => Array.from({ length: plan.rounds }, (_, round) => samples.get(key)?.[round]?.[name] ?? null)
const field = (key, name) => spread(roundsOf(key, name))?.median ?? null
const METRICS = { keepAlive: 'keepAlive', fullHandshake: 'full', resumedHandshake: 'resumed' }
const perMetric = build => Object.fromEntries(Object.entries(METRICS).map(([metric, window]) => [metric, build(window)]))
const cpuRounds = (scenario, runtime) => perMetric(window => roundsOf(`${scenario}|${runtime.execPath}|${window}`, 'cpuUsPerOperation'))
const rows = runtimes.flatMap(runtime => SCENARIOS.flatMap(scenario => {
  const key = `${scenario}|${runtime.execPath}`
  if (!versions.has(key)) return []
  const rounds = cpuRounds(scenario, runtime)
  // The baseline on the same Node (nginx answering itself: the first runtime's), paired round by round.
  const baseline = BASELINES[scenario]
  const baselineRuntime = versions.has(`${baseline}|${runtime.execPath}`) ? runtime : scenario === NGINX ? runtimes[0] : null
  const baselineRounds = baseline === undefined || baselineRuntime === null || !versions.has(`${baseline}|${baselineRuntime.execPath}`) ? null : cpuRounds(baseline, baselineRuntime)
  return [{
    scenario,
    ...versions.get(key),
    // Medians over the rounds; every round's figure (index = round, null where not measured) and their spread below.
    serverCpuUs: perMetric(window => round2(field(`${key}|${window}`, 'cpuUsPerOperation'))),
    serverCpuUsRounds: Object.fromEntries(Object.entries(rounds).map(([metric, values]) => [metric, values.map(round2)])),
    serverCpuUsSpread: Object.fromEntries(Object.entries(rounds).map(([metric, values]) => [metric, roundSpread(spread(values), round2)])),
    // This scenario's CPU over its baseline's, measured in the same round on the same Node: the figure to compare across runs.
    vsBaseline: baselineRounds === null
      ? null
      : {
          baseline,
          ...Object.fromEntries(Object.keys(METRICS).map(metric => {
            const ratios = pairedRatios(rounds[metric], baselineRounds[metric])
            return [metric, ratios === null ? null : { rounds: ratios.rounds.map(round4), ...roundSpread(ratios, round4) }]
          }))
        },
    // Of serverCpuUs, the proxy's own part (the rest is the app's), for a proxy with an app behind it.
    proxyCpuUs: isProxy(scenario) && PROXIES[scenario].app !== null ? perMetric(window => round2(field(`${key}|${window}`, 'proxyCpuUsPerOperation'))) : null,
    keepAlive: { requestsPerSecond: field(`${key}|keepAlive`, 'requestsPerSecond'), p50: field(`${key}|keepAlive`, 'p50'), p99: field(`${key}|keepAlive`, 'p99'), errors: field(`${key}|keepAlive`, 'errors'), requests: field(`${key}|keepAlive`, 'operations') },
    fullHandshakesPerSecond: field(`${key}|full`, 'perSecond'),
    resumedPerSecond: field(`${key}|resumed`, 'perSecond'),
    resumedShare: samples.has(`${key}|resumed`) ? median(samples.get(`${key}|resumed`).map(s => s.resumed / Math.max(1, s.resumed + s.full))) : null,
    connectionErrors: (field(`${key}|full`, 'errors') ?? 0) + (field(`${key}|resumed`, 'errors') ?? 0),
    // The OCSP family: the share of full handshakes that got a staple, and the OCSP requests the responder answered
    // per new connection (medians of the rounds); null for the other scenarios.
    ocsp: isOcsp(scenario)
      ? {
          stapledShare: median(samples.get(`${key}|full`).map(s => s.stapled / Math.max(1, s.full))),
          lookupsPerConnection: round4(median(samples.get(`${key}|full`).map(s => s.ocspLookups / Math.max(1, s.completed))))
        }
      : null
  }]
}))
let client = null
if (samples.has('client|undici')) {
  const rounds = { undici: samples.get('client|undici'), undiciMtls: samples.get('client|undici-mtls') }
  const ratio = pairedRatios(rounds.undiciMtls, rounds.undici)
  client = { undici: median(rounds.undici), undiciMtls: median(rounds.undiciMtls), ratio: round4(ratio.median), ratioSpread: roundSpread(ratio, round4), rounds }
}

const calibrationSpread = spread(calibrations)
const machine = machineOf({
  startedAt,
  mode,
  plan,
  pinned: hasTaskset ? 'server on core 0, load on core 1' : 'not pinned',
  // This machine's speed during the run, measured in the bench process at the start of each round.
  calibration: {
    measure: 'CPU µs per P-256 ECDSA (SHA-256) verification, node:crypto, in the bench process (the load core)',
    rounds: calibrations.map(round2),
    ...roundSpread(calibrationSpread, round2)
  }
})
const results = { machine, scenarios: rows, client, importMs, skipped }

const us = value => value === null || value === undefined ? '–' : Math.round(value).toLocaleString('en-US')
const fmt = value => value === null ? '–' : Math.round(value).toLocaleString('en-US')
// A median with its range over the rounds, where there are several.
const withSpread = (summary, format) => summary === null ? '–' : plan.rounds > 1 ? `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})` : format(summary.median)
const ratio = value => value.toFixed(2)
const byNode = row => runtimes.length > 1 && row.node !== null ? ` (Node ${row.node})` : ''
// One line: how much of each proxy scenario's CPU is the proxy's own (the rest is the app's).
const proxySplit = split => split.length === 0
  ? []
  : [`Of that CPU, the proxy's own part, µs per keep-alive / full / resumed (the rest is the app's): ${split.map(row => `${row.scenario}${byNode(row)} ${us(row.proxyCpuUs.keepAlive)} / ${us(row.proxyCpuUs.fullHandshake)} / ${us(row.proxyCpuUs.resumedHandshake)}`).join('; ')}.`, '']
const compared = rows.filter(row => row.vsBaseline !== null)
const ocspRows = rows.filter(row => row.ocsp !== null)
// The OCSP family: what the client got and what the responder did, which the server's CPU does not include.
const ocspNote = ocspRows.length === 0
  ? []
  : [`OCSP family (the load asks for a staple on every connection): staples received on ${ocspRows.map(row => `${row.scenario}${byNode(row)} ${Math.round(row.ocsp.stapledShare * 100)}%`).join(', ')} of full handshakes; OCSP requests answered by the responder per new connection: ${ocspRows.map(row => `${row.scenario}${byNode(row)} ${row.ocsp.lookupsPerConnection.toFixed(2)}`).join(', ')}. The responder (\`openssl ocsp\`, one process per request, on the load's core) is not counted in the server's CPU.`, '']
const headlineRow = rows.find(row => row.scenario === HEADLINE.scenario && row.vsBaseline !== null)
const rangeNote = plan.rounds > 1 ? `median (min–max) of ${plan.rounds} rounds` : 'one round: no spread'
const headline = headlineRow === undefined
  ? []
  : [`**${HEADLINE.scenario} vs ${HEADLINE.baseline}, server CPU per operation, paired round by round (${rangeNote}): full handshake + request ${withSpread(headlineRow.vsBaseline.fullHandshake, ratio)} ×, keep-alive request ${withSpread(headlineRow.vsBaseline.keepAlive, ratio)} ×, resumed + request ${withSpread(headlineRow.vsBaseline.resumedHandshake, ratio)} ×.**`, '']
const markdown = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores); load generator Node ${machine.node}; ${machine.pinned}; ${mode} run (${plan.rounds} alternating round(s)). Server CPU µs per operation is the figure: requests per second are bound by the one load process here.`,
  '',
  `Calibration: a P-256 ECDSA verification took ${withSpread(calibrationSpread, value => value.toFixed(1))} µs of CPU in the bench process (node:crypto, OpenSSL ${machine.openssl}); divide by it to compare figures across days. Load average (1 min) ${machine.loadAverage.start[0]} at the start, ${machine.loadAverage.end[0]} at the end, on ${machine.cores} cores; the run took ${machine.durationS < 120 ? `${machine.durationS} s` : `${Math.round(machine.durationS / 60)} min`}.`,
  '',
  ...headline,
  '| scenario | server | CPU µs / keep-alive req | CPU µs / full handshake + req | CPU µs / resumed + req | keep-alive req/s | full conn/s | resumed conn/s | resumed share |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(row => `| ${row.scenario} | ${isProxy(row.scenario) ? row.openssl : `Node ${row.node}, OpenSSL ${row.openssl}`} | ${withSpread(row.serverCpuUsSpread.keepAlive, us)} | ${withSpread(row.serverCpuUsSpread.fullHandshake, us)} | ${withSpread(row.serverCpuUsSpread.resumedHandshake, us)} | ${fmt(row.keepAlive.requestsPerSecond)} | ${fmt(row.fullHandshakesPerSecond)} | ${fmt(row.resumedPerSecond)} | ${row.resumedShare === null ? '–' : `${Math.round(row.resumedShare * 100)}%`} |`),
  ...skipped.map(skip => `| ${skip.scenario} | skipped: ${skip.reason} | | | | | | | |`),
  '',
  ...proxySplit(rows.filter(row => row.proxyCpuUs !== null)),
  ...ocspNote,
  ...(compared.length === 0
    ? []
    : [
        `Each scenario's server CPU over its baseline's, measured in the same round on the same Node (${rangeNote}):`,
        '',
        '| scenario | baseline | keep-alive req | full handshake + req | resumed + req |',
        '| --- | --- | ---: | ---: | ---: |',
        ...compared.map(row => `| ${row.scenario}${byNode(row)} | ${row.vsBaseline.baseline} | ${withSpread(row.vsBaseline.keepAlive, ratio)} | ${withSpread(row.vsBaseline.fullHandshake, ratio)} | ${withSpread(row.vsBaseline.resumedHandshake, ratio)} |`),
        ''
      ]),
  ...(client === null ? [] : [`Client: undici-mtls ${fmt(client.undiciMtls)} req/s vs plain undici ${fmt(client.undici)} req/s (ratio ${withSpread(client.ratioSpread, ratio)}), keep-alive against the mtls server.`, '']),
  ...(importMs === null ? [] : [`Import time of each built package, fresh process, ms: ${Object.entries(importMs).map(([name, ms]) => `${name} ${ms}`).join(', ')}.`, ''])
].join('\n')

await writeResults(outDir, outName, results, markdown, [['svg', chartSvg(rows, machine)]])
for (const family of families) await runFamily(family)

// The bench's flags, strictly: a misspelt one is an error, not a full run with defaults.
function readArguments (argv) {
  let values
  try {
    values = parseArgs({
      args: argv.filter(arg => arg !== '--'), // pnpm passes on a separator given before the flags
      options: {
        help: { type: 'boolean', short: 'h' },
        smoke: { type: 'boolean' },
        quick: { type: 'boolean' },
        out: { type: 'string' },
        node: { type: 'string', multiple: true },
        scenarios: { type: 'string' }
      }
    }).values
  } catch (err) {
    console.error(`bench: ${err.message}\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(HELP)
    process.exit(0)
  }
  return values
}
