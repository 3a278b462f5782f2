// `pnpm bench` (a few minutes) or `pnpm bench --quick` (under a minute, the CI smoke test).
// Each server scenario runs in a process of its own, pinned to core 0 where taskset exists, while the
// load runs here on core 1; rounds alternate the scenarios so that drift on a shared machine cancels out.
import { execFileSync, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect as netConnect } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { createTestPki, writeCertificateFiles } from 'mtls-pki'
import { Agent, request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'
import { chartSvg } from './chart.js'
import { newConnections } from './new-connections.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const outIndex = args.indexOf('--out')
const outDir = outIndex === -1 ? fileURLToPath(new URL('../results', import.meta.url)) : args[outIndex + 1]
const plan = quick
  ? { rounds: 1, warmUpSeconds: 0, keepAliveSeconds: 1, connectionMs: 700, clientMs: 700, connections: 20 }
  : { rounds: 3, warmUpSeconds: 1, keepAliveSeconds: 5, connectionMs: 3000, clientMs: 3000, connections: 50 }
const NGINX = 'nginx-mtls->http'
const nginxBinary = (() => { try { return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || null } catch { return null } })()
const SCENARIOS = ['http', 'tls', 'mtls', 'mtls+identity', 'mtls+identity+authz', ...(nginxBinary === null ? [] : [NGINX])]
const skipped = nginxBinary === null ? [{ scenario: NGINX, reason: 'no nginx binary on the PATH (apt-get install nginx)' }] : []
const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' })

const dir = await mkdtemp(join(tmpdir(), 'mtls-bench-'))
const pki = await createTestPki()
await writeCertificateFiles(dir, 'server', pki.server)
const credentials = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key }

const steps = plan.rounds * (SCENARIOS.length + 1)
let done = 0
const progress = label => {
  done++
  const width = 30
  const filled = Math.round(width * done / steps)
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${steps} ${label.padEnd(40)}`)
}

async function startServer (scenario) {
  if (scenario === NGINX) return await startNginx()
  const script = fileURLToPath(new URL('./server.js', import.meta.url))
  const child = hasTaskset
    ? fork(script, [scenario, dir], { execPath: 'taskset', execArgv: ['-c', '0', process.execPath], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : fork(script, [scenario, dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [{ port }] = await once(child, 'message')
  return { port, stop: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

// nginx terminating mTLS (ssl_verify_client on) and proxying, with keep-alive upstream, to the plain HTTP server.
async function startNginx () {
  const upstream = await startServer('http')
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const port = probe.address().port
  probe.close()
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream app { server 127.0.0.1:${upstream.port}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${join(dir, 'server-chain.pem')};
    ssl_certificate_key ${join(dir, 'server-key.pem')};
    ssl_client_certificate ${join(dir, 'server-ca.pem')};
    ssl_verify_client on;
    ssl_session_cache shared:SSL:10m;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const args = ['-p', dir, '-c', conf, '-g', 'daemon off;']
  const nginx = hasTaskset ? spawn('taskset', ['-c', '0', nginxBinary, ...args], { stdio: 'ignore' }) : spawn(nginxBinary, args, { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    const up = await new Promise(resolve => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (up) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    port,
    stop: async () => {
      nginx.kill('SIGTERM')
      await once(nginx, 'exit')
      await upstream.stop()
    }
  }
}

async function keepAlive (scenario, port) {
  const secure = scenario !== 'http'
  const options = {
    url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}/`,
    connections: plan.connections,
    ...(secure ? { tlsOptions: scenario === 'tls' ? { ca: pki.ca } : credentials } : {})
  }
  if (plan.warmUpSeconds > 0) await autocannon({ ...options, duration: plan.warmUpSeconds }) // let the JIT settle
  const result = await autocannon({ ...options, duration: plan.keepAliveSeconds })
  return { requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

async function clientThroughput (port, dispatcher, durationMs = plan.clientMs) {
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

const samples = {}
const record = (key, value) => { (samples[key] ??= []).push(value) }

for (let round = 0; round < plan.rounds; round++) {
  const order = round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse()
  for (const scenario of order) {
    progress(`round ${round + 1}: ${scenario}`)
    const server = await startServer(scenario)
    try {
      const ka = await keepAlive(scenario, server.port)
      record(`${scenario}|keepAlive`, ka)
      if (scenario !== 'http') {
        const creds = scenario === 'tls' ? { ca: pki.ca } : credentials
        record(`${scenario}|full`, await newConnections({ port: server.port, secure: true, credentials: creds, resume: false, durationMs: plan.connectionMs }))
        record(`${scenario}|resumed`, await newConnections({ port: server.port, secure: true, credentials: creds, resume: true, durationMs: plan.connectionMs }))
      } else {
        record(`${scenario}|full`, await newConnections({ port: server.port, secure: false, durationMs: plan.connectionMs }))
      }
    } finally {
      await server.stop()
    }
  }
  progress(`round ${round + 1}: undici clients`)
  const server = await startServer('mtls')
  const plain = new Agent({ connections: 16, connect: { ...credentials, servername: 'localhost' } })
  const mtls = await createMtlsAgent({ ...credentials, server: 'spiffe://mycompany.com/production/payment-service', agent: { connections: 16 } })
  try {
    const clients = round % 2 === 0 ? [['undici', plain], ['undici-mtls', mtls]] : [['undici-mtls', mtls], ['undici', plain]]
    for (const [, dispatcher] of clients) await clientThroughput(server.port, dispatcher, 300) // warm-up: connections and JIT
    for (const [name, dispatcher] of clients) record(`client|${name}`, await clientThroughput(server.port, dispatcher))
  } finally {
    await plain.close()
    await mtls.close()
    await server.stop()
  }
}
process.stderr.write('\n')
await rm(dir, { recursive: true, force: true })

const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const medianOf = (key, field) => samples[key] === undefined ? null : median(samples[key].map(sample => typeof sample === 'number' ? sample : sample[field]))
const rows = SCENARIOS.map(scenario => ({
  scenario,
  keepAlive: { requestsPerSecond: medianOf(`${scenario}|keepAlive`, 'requestsPerSecond'), p50: medianOf(`${scenario}|keepAlive`, 'p50'), p99: medianOf(`${scenario}|keepAlive`, 'p99'), errors: medianOf(`${scenario}|keepAlive`, 'errors') },
  fullHandshakesPerSecond: medianOf(`${scenario}|full`, 'perSecond'),
  resumedPerSecond: medianOf(`${scenario}|resumed`, 'perSecond'),
  resumedShare: samples[`${scenario}|resumed`] === undefined ? null : median(samples[`${scenario}|resumed`].map(s => s.resumed / Math.max(1, s.resumed + s.full)))
}))
const tls = rows.find(row => row.scenario === 'tls')
const http = rows.find(row => row.scenario === 'http')
for (const row of rows) {
  row.keepAlive.ratioToTls = row.keepAlive.requestsPerSecond / tls.keepAlive.requestsPerSecond
  row.keepAlive.ratioToHttp = row.keepAlive.requestsPerSecond / http.keepAlive.requestsPerSecond
}
const client = { undici: medianOf('client|undici'), undiciMtls: medianOf('client|undici-mtls') }
client.ratio = client.undiciMtls / client.undici

const machine = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  openssl: process.versions.openssl,
  pinned: hasTaskset ? 'server on core 0, load on core 1' : 'not pinned',
  mode: quick ? 'quick' : 'full',
  plan
}
const results = { machine, scenarios: rows, client, skipped }

const fmt = value => value === null ? '–' : Math.round(value).toLocaleString('en-US')
const ratio = value => value === null || Number.isNaN(value) ? '–' : value.toFixed(2)
const markdown = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}, OpenSSL ${machine.openssl}; ${machine.pinned}; ${machine.mode} run (${plan.rounds} alternating round(s)).`,
  '',
  '| scenario | keep-alive req/s | p50 ms | p99 ms | vs tls | vs http | full handshakes/s | resumed conn/s | resumed share |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(row => `| ${row.scenario} | ${fmt(row.keepAlive.requestsPerSecond)} | ${row.keepAlive.p50 ?? '–'} | ${row.keepAlive.p99 ?? '–'} | ${ratio(row.keepAlive.ratioToTls)} | ${ratio(row.keepAlive.ratioToHttp)} | ${fmt(row.fullHandshakesPerSecond)} | ${fmt(row.resumedPerSecond)} | ${row.resumedShare === null ? '–' : `${Math.round(row.resumedShare * 100)}%`} |`),
  ...skipped.map(skip => `| ${skip.scenario} | skipped: ${skip.reason} | | | | | | | |`),
  '',
  `Client: undici-mtls ${fmt(client.undiciMtls)} req/s vs plain undici ${fmt(client.undici)} req/s (ratio ${ratio(client.ratio)}), keep-alive against the mtls server.`,
  ''
].join('\n')

await mkdir(outDir, { recursive: true })
await writeFile(join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n')
await writeFile(join(outDir, 'latest.md'), markdown)
await writeFile(join(outDir, 'latest.svg'), chartSvg(rows, machine))
console.log(markdown)
console.log(`results in ${outDir}: latest.json, latest.md, latest.svg`)
