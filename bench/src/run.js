// `pnpm bench` (several minutes), `pnpm bench --quick` (about a minute), `pnpm bench --smoke` (the pnpm test
// check, seconds), `pnpm bench --node 24` (the server scenarios on Node 24 too, side by side; any major of
// scripts/runtimes.mjs), `--scenarios a,b` (only those), `--out DIR`. Each server runs in a process of its own, pinned to core 0 where taskset exists,
// while the load runs here on core 1. The headline figure is the server's own CPU time per operation (read
// from the server process around each measured window): on two cores one load process cannot saturate a
// TLS server, so requests per second measure the client and are kept as secondary columns.
import { execFile, execFileSync, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, connect as netConnect } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import autocannon from 'autocannon'
import { createTestPki, writeCertificateFiles } from 'mtls-pki'
import { Agent, request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'
import { nodeBinary } from '../../scripts/runtimes.mjs'
import { chartSvg } from './chart.js'
import { newConnections } from './new-connections.js'

const args = readArguments(process.argv.slice(2))
const mode = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full'
const outDir = args.out ?? fileURLToPath(new URL('../results', import.meta.url))
const extraNodes = args.node ?? []
// Windows are bounded in time and in count; smoke windows are counted only, so every scenario is measured in seconds.
const PLANS = {
  smoke: { rounds: 1, warmUp: null, keepAlive: { amount: 200, sampleInt: 50 }, connections: { maxConnections: 24, durationMs: 5000 }, client: null, loadConnections: 8, importSamples: 1 },
  quick: { rounds: 1, warmUp: null, keepAlive: { duration: 1 }, connections: { durationMs: 700 }, client: 700, loadConnections: 20, importSamples: 3 },
  full: { rounds: 3, warmUp: { duration: 1 }, keepAlive: { duration: 5 }, connections: { durationMs: 3000 }, client: 3000, loadConnections: 50, importSamples: 5 }
}
const plan = PLANS[mode]

const NGINX = 'nginx-mtls'
const NGINX_PROXY = 'nginx-mtls->http'
const nginxBinary = (() => { try { return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || null } catch { return null } })()
const NODE_SCENARIOS = ['http', 'tls', 'node-mtls', 'fastify-tls-options', 'mtls', 'mtls+identity', 'mtls+identity+authz', 'mtls+identity+authz+logger']
const only = args.scenarios?.split(',')
const SCENARIOS = [...NODE_SCENARIOS, ...(nginxBinary === null ? [] : [NGINX, NGINX_PROXY])].filter(scenario => only === undefined || only.includes(scenario))
const skipped = nginxBinary === null ? [NGINX, NGINX_PROXY].map(scenario => ({ scenario, reason: 'no nginx binary on the PATH (apt-get install nginx)' })) : []
const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' })
const CLOCK_TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100)

const runtimes = [{ node: process.versions.node, execPath: process.execPath }]
for (const major of extraNodes) runtimes.push({ major, execPath: await nodeBinary(major) })

const dir = await mkdtemp(join(tmpdir(), 'mtls-bench-'))
const pki = await createTestPki()
await writeCertificateFiles(dir, 'server', pki.server)
const credentials = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key }

const perRound = runtimes.length * SCENARIOS.length - (SCENARIOS.includes(NGINX) ? runtimes.length - 1 : 0) + (plan.client === null ? 0 : 1)
const steps = plan.rounds * perRound + 1
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
  const [{ port, node, openssl }] = await once(child, 'message')
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

// nginx in one process (master_process off) so that its CPU time is one /proc/PID/stat; with `upstream`,
// proxying with keep-alive to that plain HTTP server (whose CPU counts too), else answering itself.
async function startNginx (upstream) {
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  const answer = upstream === null
    ? 'location / { default_type application/json; return 200 \'{"hello":"world"}\'; }'
    : 'location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  await writeFile(conf, `master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
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
`)
  const nginxArgs = ['-p', dir, '-c', conf, '-g', 'daemon off;']
  const nginx = hasTaskset ? spawn('taskset', ['-c', '0', nginxBinary, ...nginxArgs], { stdio: 'ignore' }) : spawn(nginxBinary, nginxArgs, { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    const up = await new Promise(resolve => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (up) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  // taskset execs nginx in place: the pid is nginx's. utime + stime, fields 14 and 15, in clock ticks.
  const ownCpu = async () => {
    const fields = (await readFile(`/proc/${nginx.pid}/stat`, 'utf8')).split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US
  }
  return {
    port,
    node: upstream === null ? null : upstream.node,
    openssl: upstream === null ? nginxVersion() : `${nginxVersion()}, upstream Node ${upstream.node}`,
    cpu: async () => await ownCpu() + (upstream === null ? 0 : await upstream.cpu()),
    stop: async () => {
      nginx.kill('SIGTERM')
      await once(nginx, 'exit')
      await upstream?.stop()
    }
  }
}

// nginx prints its version on stderr.
function nginxVersion () {
  return `nginx ${/nginx\/([\d.]+)/.exec(execFileSync('sh', ['-c', `${nginxBinary} -v 2>&1`], { encoding: 'utf8' }))?.[1] ?? ''}`.trim()
}

async function startServer (scenario, runtime) {
  if (scenario === NGINX) return await startNginx(null)
  if (scenario === NGINX_PROXY) return await startNginx(await startNode('http', runtime))
  return await startNode(scenario, runtime)
}

// Server CPU µs per operation over one window, and what the client saw.
async function measured (server, work) {
  const before = await server.cpu()
  const result = await work()
  const after = await server.cpu()
  return { ...result, cpuUsPerOperation: result.operations > 0 ? (after - before) / result.operations : null }
}

async function keepAlive (scenario, server) {
  const secure = scenario !== 'http'
  const options = {
    url: `${secure ? 'https' : 'http'}://127.0.0.1:${server.port}/`,
    connections: plan.loadConnections,
    ...(secure ? { tlsOptions: scenario === 'tls' ? { ca: pki.ca } : credentials } : {})
  }
  if (plan.warmUp !== null) await autocannon({ ...options, ...plan.warmUp }) // let the JIT settle
  return await measured(server, async () => {
    const result = await autocannon({ ...options, ...plan.keepAlive })
    return { operations: result.requests.total, requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
  })
}

async function connections (scenario, server, resume) {
  const secure = scenario !== 'http'
  return await measured(server, async () => {
    const result = await newConnections({ port: server.port, secure, credentials: scenario === 'tls' ? { ca: pki.ca } : credentials, resume, ...plan.connections })
    return { ...result, operations: result.completed }
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

const median = values => values.length === 0 ? null : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const samples = new Map()
const record = (key, value) => { if (!samples.has(key)) samples.set(key, []); samples.get(key).push(value) }
const versions = new Map()

for (let round = 0; round < plan.rounds; round++) {
  for (const runtime of runtimes) {
    // nginx answering itself does not depend on Node: measured with the first runtime only.
    const order = (round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse()).filter(scenario => scenario !== NGINX || runtime === runtimes[0])
    // Started together (idle servers cost nothing), measured one at a time.
    const servers = await Promise.all(order.map(scenario => startServer(scenario, runtime)))
    try {
      for (const [index, scenario] of order.entries()) {
        progress(`round ${round + 1}: ${scenario}${runtime === runtimes[0] ? '' : ` (Node ${runtime.major})`}`)
        const server = servers[index]
        const key = `${scenario}|${runtime.execPath}`
        versions.set(key, { node: server.node, openssl: server.openssl })
        record(`${key}|keepAlive`, await keepAlive(scenario, server))
        record(`${key}|full`, await connections(scenario, server, false))
        if (scenario !== 'http') record(`${key}|resumed`, await connections(scenario, server, true))
      }
    } finally {
      await Promise.all(servers.map(server => server.stop()))
    }
  }
  if (plan.client !== null) {
    progress(`round ${round + 1}: undici clients`)
    const server = await startNode('mtls', runtimes[0])
    const plain = new Agent({ connections: 16, connect: { ...credentials, servername: 'localhost' } })
    const mtls = await createMtlsAgent({ ...credentials, server: 'spiffe://mycompany.com/production/payment-service', agent: { connections: 16 } })
    try {
      const clients = round % 2 === 0 ? [['undici', plain], ['undici-mtls', mtls]] : [['undici-mtls', mtls], ['undici', plain]]
      for (const [, dispatcher] of clients) await clientThroughput(server.port, dispatcher, 300) // warm-up: connections and JIT
      for (const [name, dispatcher] of clients) record(`client|${name}`, await clientThroughput(server.port, dispatcher, plan.client))
    } finally {
      await plain.close()
      await mtls.close()
      await server.stop()
    }
  }
}
progress('import times')
const importMs = await importTimes()
process.stderr.write('\n')
await rm(dir, { recursive: true, force: true })

const field = (key, name) => samples.has(key) ? median(samples.get(key).map(sample => sample[name]).filter(value => value !== null)) : null
const rows = runtimes.flatMap(runtime => SCENARIOS.flatMap(scenario => {
  const key = `${scenario}|${runtime.execPath}`
  if (!versions.has(key)) return []
  return [{
    scenario,
    ...versions.get(key),
    serverCpuUs: { keepAlive: field(`${key}|keepAlive`, 'cpuUsPerOperation'), fullHandshake: field(`${key}|full`, 'cpuUsPerOperation'), resumedHandshake: field(`${key}|resumed`, 'cpuUsPerOperation') },
    keepAlive: { requestsPerSecond: field(`${key}|keepAlive`, 'requestsPerSecond'), p50: field(`${key}|keepAlive`, 'p50'), p99: field(`${key}|keepAlive`, 'p99'), errors: field(`${key}|keepAlive`, 'errors'), requests: field(`${key}|keepAlive`, 'operations') },
    fullHandshakesPerSecond: field(`${key}|full`, 'perSecond'),
    resumedPerSecond: field(`${key}|resumed`, 'perSecond'),
    resumedShare: samples.has(`${key}|resumed`) ? median(samples.get(`${key}|resumed`).map(s => s.resumed / Math.max(1, s.resumed + s.full))) : null,
    connectionErrors: (field(`${key}|full`, 'errors') ?? 0) + (field(`${key}|resumed`, 'errors') ?? 0)
  }]
}))
const client = plan.client === null ? null : { undici: median(samples.get('client|undici')), undiciMtls: median(samples.get('client|undici-mtls')) }
if (client !== null) client.ratio = client.undiciMtls / client.undici

const machine = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.versions.node,
  openssl: process.versions.openssl,
  pinned: hasTaskset ? 'server on core 0, load on core 1' : 'not pinned',
  mode,
  plan
}
const results = { machine, scenarios: rows, client, importMs, skipped }

const us = value => value === null || value === undefined ? '–' : Math.round(value).toLocaleString('en-US')
const fmt = value => value === null ? '–' : Math.round(value).toLocaleString('en-US')
const floor = node => rows.find(row => row.scenario === 'node-mtls' && row.node === node)
const ratioTo = (row, base, metric) => base === undefined || row.serverCpuUs[metric] === null || base.serverCpuUs[metric] === null ? '–' : (row.serverCpuUs[metric] / base.serverCpuUs[metric]).toFixed(2)
const markdown = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores); load generator Node ${machine.node}; ${machine.pinned}; ${mode} run (${plan.rounds} alternating round(s)). Server CPU µs per operation is the headline figure: requests per second are bound by the one load process here.`,
  '',
  '| scenario | server | CPU µs / keep-alive req | CPU µs / full handshake + req | CPU µs / resumed + req | full vs node-mtls | keep-alive req/s | full conn/s | resumed conn/s | resumed share |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(row => `| ${row.scenario} | ${row.scenario.startsWith('nginx') ? row.openssl : `Node ${row.node}, OpenSSL ${row.openssl}`} | ${us(row.serverCpuUs.keepAlive)} | ${us(row.serverCpuUs.fullHandshake)} | ${us(row.serverCpuUs.resumedHandshake)} | ${ratioTo(row, floor(row.node ?? machine.node), 'fullHandshake')} | ${fmt(row.keepAlive.requestsPerSecond)} | ${fmt(row.fullHandshakesPerSecond)} | ${fmt(row.resumedPerSecond)} | ${row.resumedShare === null ? '–' : `${Math.round(row.resumedShare * 100)}%`} |`),
  ...skipped.map(skip => `| ${skip.scenario} | skipped: ${skip.reason} | | | | | | | | |`),
  '',
  client === null ? '' : `Client: undici-mtls ${fmt(client.undiciMtls)} req/s vs plain undici ${fmt(client.undici)} req/s (ratio ${client.ratio.toFixed(2)}), keep-alive against the mtls server.`,
  '',
  `Import time of each built package, fresh process, ms: ${Object.entries(importMs).map(([name, ms]) => `${name} ${ms}`).join(', ')}.`,
  ''
].join('\n')

await mkdir(outDir, { recursive: true })
await writeFile(join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n')
await writeFile(join(outDir, 'latest.md'), markdown)
await writeFile(join(outDir, 'latest.svg'), chartSvg(rows, machine))
console.log(markdown)
console.log(`results in ${outDir}: latest.json, latest.md, latest.svg`)

// The bench's flags, strictly: a misspelt one is an error, not a full run with defaults.
function readArguments (argv) {
  try {
    return parseArgs({
      args: argv.filter(arg => arg !== '--'), // pnpm passes on a separator given before the flags
      options: {
        smoke: { type: 'boolean' },
        quick: { type: 'boolean' },
        out: { type: 'string' },
        node: { type: 'string', multiple: true },
        scenarios: { type: 'string' }
      }
    }).values
  } catch (err) {
    console.error(`bench: ${err.message}\nusage: pnpm bench [--quick | --smoke] [--node MAJOR]... [--scenarios a,b] [--out DIR]`)
    process.exit(2)
  }
}
