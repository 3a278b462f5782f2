// The client's side (issue 29, item 1): the CPU a client process spends per keep-alive request, per new connection (a
// full TLS 1.3 handshake + one request) and per resumed connection (+ one request), for undici-mtls and for plain undici
// with the same certificates and TLS options, against one plain fastify-mtls server (server.js `mtls`) pinned to core 0.
// Each client runs in a process of its own (client-load.js) pinned to core 1 and reads its own CPU time around each
// window; the bench process only steers them. Rounds alternate the clients' order; each undici-mtls figure is divided by
// plain undici's of the same round. `node src/client.js [--smoke | --quick] [--out DIR] [--name NAME]
// [--ops keepAlive,full,resumed] [--cpu-prof DIR]` (--cpu-prof: a profile of each client process), or
// `pnpm bench --scenarios client`.
import { execFileSync, fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { machineOf, round2, roundSpread, writeResults } from './report.js'
import { calibrate, median, pairedRatios, resultsName, spread } from './rounds.js'

const { values: args } = parseArgs({ args: process.argv.slice(2).filter(arg => arg !== '--'), options: { smoke: { type: 'boolean' }, quick: { type: 'boolean' }, out: { type: 'string' }, name: { type: 'string' }, 'cpu-prof': { type: 'string' }, ops: { type: 'string' } } })
const mode = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full'
const outDir = args.out ?? fileURLToPath(new URL('../results', import.meta.url))
// Run alone it is a run of some scenarios: never `latest`.
const outName = `${args.name ?? resultsName(mode, true)}.client`
const CLIENTS = ['undici', 'undici:shared-context', 'undici-mtls', 'undici-mtls+server']
const BASELINE = 'undici'
const OPS = { keepAlive: 'keepAlive', fullHandshake: 'full', resumedHandshake: 'resumed' }
// `--ops keepAlive,full`: only those windows (with --cpu-prof, a profile of one operation); the others' figures are null.
const opsRun = args.ops === undefined ? Object.values(OPS) : args.ops.split(',')
if (opsRun.some(op => !Object.values(OPS).includes(op))) throw new Error(`client bench: --ops takes ${Object.values(OPS).join(', ')}`)
// Windows counted in operations (smoke: a fixed small amount of work, however busy the machine), each after a warm-up
// of its own (the JIT, and for keep-alive the connections it opens). `concurrency`: parallel loops, and the agent's
// connections.
const PLANS = {
  smoke: { rounds: 1, concurrency: 4, keepAlive: { count: 200, warmUp: 50 }, full: { count: 12, warmUp: 4 }, resumed: { count: 12, warmUp: 4 }, verifies: 20 },
  quick: { rounds: 1, concurrency: 8, keepAlive: { count: 3000, warmUp: 500 }, full: { count: 150, warmUp: 30 }, resumed: { count: 150, warmUp: 30 }, verifies: 200 },
  full: { rounds: 5, concurrency: 8, keepAlive: { count: 20_000, warmUp: 3000 }, full: { count: 600, warmUp: 100 }, resumed: { count: 600, warmUp: 100 }, verifies: 500 }
}
const plan = PLANS[mode]

const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' })
// A fork inherits the parent's affinity: each process is pinned explicitly.
const pinnedFork = (script, argv, core, execArgv = []) => hasTaskset
  ? fork(script, argv, { execPath: 'taskset', execArgv: ['-c', String(core), process.execPath, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  : fork(script, argv, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const nextMessage = async (child, test) => {
  for (;;) {
    const [message] = await once(child, 'message')
    if (test(message)) return message
  }
}

const { createTestPki, writeCertificateFiles } = await import('mtls-pki')
const startedAt = { time: Date.now(), loadAverage: loadavg() }
const dir = await mkdtemp(join(tmpdir(), 'mtls-bench-client-'))
const pki = await createTestPki()
await writeCertificateFiles(dir, 'server', pki.server)
const credentials = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key }

async function startServer () {
  const child = pinnedFork(fileURLToPath(new URL('./server.js', import.meta.url)), ['mtls', dir, join(dir, 'server.log')], 0)
  const exited = once(child, 'exit').then(([code, signal]) => { throw new Error(`client bench: the server exited (${signal ?? code}) before it listened`) })
  exited.catch(() => {})
  const { port, node, openssl } = await Promise.race([nextMessage(child, message => message.port !== undefined), exited])
  return { port, node, openssl, stop: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

async function startClient (kind, port) {
  const profile = args['cpu-prof'] !== undefined ? ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', args['cpu-prof'], '--cpu-prof-name', `${kind.replace(':', '-')}-${Date.now()}.cpuprofile`] : []
  const child = pinnedFork(fileURLToPath(new URL('./client-load.js', import.meta.url)), [kind], 1, profile)
  const { node, openssl } = await nextMessage(child, message => message.started === true)
  child.send({ setup: { port, credentials } })
  await nextMessage(child, message => message.ready === true)
  return {
    node,
    openssl,
    window: async op => { child.send({ op, ...plan[op], concurrency: plan.concurrency }); return await nextMessage(child, message => message.op === op) },
    stop: async () => { child.send('exit'); await once(child, 'exit') }
  }
}

const samples = new Map() // `${client}|${op}` -> one result per round
const calibrations = []
let server = null
for (let round = 0; round < plan.rounds; round++) {
  calibrations[round] = calibrate(plan.verifies)
  const current = await startServer()
  server = current
  try {
    for (const kind of round % 2 === 0 ? CLIENTS : [...CLIENTS].reverse()) {
      const client = await startClient(kind, current.port)
      try {
        for (const op of opsRun) {
          process.stderr.write(`\rround ${round + 1}/${plan.rounds}: ${kind} ${op}`.padEnd(60))
          const result = await client.window(op)
          if (!samples.has(`${kind}|${op}`)) samples.set(`${kind}|${op}`, [])
          samples.get(`${kind}|${op}`)[round] = result
        }
      } finally {
        await client.stop()
      }
    }
  } finally {
    await current.stop()
  }
}
process.stderr.write('\n')
await rm(dir, { recursive: true, force: true })

const round4 = value => value === null ? null : Math.round(value * 10000) / 10000
const roundsOf = (kind, op, field) => Array.from({ length: plan.rounds }, (_, round) => samples.get(`${kind}|${op}`)?.[round]?.[field] ?? null)
const perOp = build => Object.fromEntries(Object.entries(OPS).map(([metric, op]) => [metric, build(op)]))
const share = result => result.full + result.resumed === 0 ? null : result.resumed / (result.full + result.resumed)
const clients = CLIENTS.map(kind => {
  const cpuRounds = perOp(op => roundsOf(kind, op, 'cpuUsPerOperation'))
  const shares = (samples.get(`${kind}|resumed`) ?? []).map(share)
  return {
    client: kind,
    clientCpuUs: perOp(op => round2(spread(roundsOf(kind, op, 'cpuUsPerOperation'))?.median ?? null)),
    clientCpuUsRounds: Object.fromEntries(Object.entries(cpuRounds).map(([metric, values]) => [metric, values.map(round2)])),
    clientCpuUsSpread: Object.fromEntries(Object.entries(cpuRounds).map(([metric, values]) => [metric, roundSpread(spread(values), round2)])),
    // Its CPU over plain undici's, measured in the same round against the same server.
    vsUndici: kind === BASELINE
      ? null
      : Object.fromEntries(Object.entries(cpuRounds).map(([metric, values]) => {
        const ratios = pairedRatios(values, perOp(op => roundsOf(BASELINE, op, 'cpuUsPerOperation'))[metric])
        return [metric, ratios === null ? null : { rounds: ratios.rounds.map(round4), ...roundSpread(ratios, round4) }]
      })),
    // Of the repeat connections (the resumed window, each client's default session handling), the share that resumed.
    resumedShare: round4(median(shares.filter(value => value !== null)) ?? null),
    resumedShareRounds: shares.map(round4),
    // A full window must make full handshakes only, a keep-alive window none.
    handshakes: perOp(op => ({ full: median(roundsOf(kind, op, 'full')), resumed: median(roundsOf(kind, op, 'resumed')) })),
    perSecond: perOp(op => round2(spread(roundsOf(kind, op, 'perSecond'))?.median ?? null)),
    errors: opsRun.reduce((sum, op) => sum + roundsOf(kind, op, 'errors').reduce((a, b) => a + (b ?? 0), 0), 0),
    operations: perOp(op => roundsOf(kind, op, 'operations'))
  }
})
const calibrationSpread = spread(calibrations)
const machine = machineOf({
  startedAt,
  mode,
  plan,
  pinned: hasTaskset ? 'server on core 0, each client on core 1' : 'not pinned',
  calibration: { measure: 'CPU µs per P-256 ECDSA (SHA-256) verification, node:crypto, in the bench process (the load core)', rounds: calibrations.map(round2), ...roundSpread(calibrationSpread, round2) }
})
const results = { machine, server: { scenario: 'mtls', node: server.node, openssl: server.openssl }, clients }

const withSpread = (summary, format) => summary === null ? '–' : plan.rounds > 1 ? `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})` : format(summary.median)
const us = value => Math.round(value).toLocaleString('en-US')
const ratio = value => value.toFixed(2)
const percent = value => value === null ? '–' : `${(value * 100).toFixed(1)}%`
const rangeNote = plan.rounds > 1 ? `median (min–max) of ${plan.rounds} rounds` : 'one round: no spread'
const markdown = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores); clients and server on Node ${machine.node} (OpenSSL ${machine.openssl}); ${machine.pinned}; ${mode} run (${plan.rounds} alternating round(s)). The figure is the client process's own CPU per operation, against one fastify-mtls server (\`mtls\`).`,
  '',
  `Calibration: a P-256 ECDSA verification took ${withSpread(calibrationSpread, value => value.toFixed(1))} µs of CPU in the bench process. Load average (1 min) ${machine.loadAverage.start[0]} at the start, ${machine.loadAverage.end[0]} at the end, on ${machine.cores} cores; the run took ${machine.durationS} s.`,
  '',
  '| client | CPU µs / keep-alive req | CPU µs / full handshake + req | CPU µs / resumed + req | repeat connections resumed |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...clients.map(row => `| ${row.client} | ${withSpread(row.clientCpuUsSpread.keepAlive, us)} | ${withSpread(row.clientCpuUsSpread.fullHandshake, us)} | ${withSpread(row.clientCpuUsSpread.resumedHandshake, us)} | ${percent(row.resumedShare)} |`),
  '',
  `Each client's CPU over plain undici's, measured in the same round (${rangeNote}):`,
  '',
  '| client | keep-alive req | full handshake + req | resumed + req |',
  '| --- | ---: | ---: | ---: |',
  ...clients.filter(row => row.vsUndici !== null).map(row => `| ${row.client} | ${withSpread(row.vsUndici.keepAlive, ratio)} | ${withSpread(row.vsUndici.fullHandshake, ratio)} | ${withSpread(row.vsUndici.resumedHandshake, ratio)} |`),
  ''
].join('\n')
await writeResults(outDir, outName, results, markdown)
