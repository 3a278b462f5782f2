// Runs a proxy as a child process for a test: its config rendered from the example template, free ports, a
// bounded life, and nothing left behind. Each proxy runs in a process group of its own (workers included), killed
// whole in teardown, when the test process exits, and in any case by coreutils `timeout` after LIFETIME_S.
import { spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { connect as tlsConnect } from 'node:tls'
import { hangLimit } from './hang-limit.js'

// A proxy outlives no test: even a test process killed with SIGKILL leaves its proxies this long at most (longer
// than any proxy's test file may take).
const LIFETIME_S = Math.ceil(hangLimit(90_000) / 1000)
const TIMEOUT_BINARY = ['/usr/bin/timeout', '/bin/timeout'].find(file => existsSync(file)) ?? null

const groups = new Set()
const dirs = new Set()
const killGroup = pgid => {
  try {
    process.kill(-pgid, 'SIGKILL')
  } catch {}
}
// Teardown does this on failures too; a test file that ends past tap's teardown (an exception, a timeout: tap
// signals SIGALRM) only gets here. A signal is raised again once cleaned up, for whoever else handles it.
const cleanUp = () => {
  for (const pgid of groups) killGroup(pgid)
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', cleanUp)
for (const signal of ['SIGALRM', 'SIGINT', 'SIGTERM', 'SIGHUP']) {
  const onSignal = () => {
    cleanUp()
    process.removeListener(signal, onSignal)
    process.kill(process.pid, signal)
  }
  process.on(signal, onSignal)
}

/** A temporary directory for a proxy's run (certificates, config, pid files), removed by `remove()` or at exit. */
export async function makeRunDir (name) {
  const dir = await mkdtemp(join(tmpdir(), `proxies-e2e-${name}-`))
  dirs.add(dir)
  return {
    dir,
    remove: async () => {
      await rm(dir, { recursive: true, force: true })
      dirs.delete(dir)
    }
  }
}

/**
 * A port nothing listens on right now (listen on port 0, close). A proxy cannot be given port 0, so it gets one of
 * these; another process may take it first, which `portTaken` recognises so the caller can retry with new ones.
 */
export async function freePort () {
  const server = createServer()
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject))
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Fills the `{{NAME}}` placeholders of an example config; a placeholder without a value is an error, never left in. */
export async function renderConfig (templateFile, values, outFile) {
  const template = await readFile(templateFile, 'utf8')
  const missing = new Set()
  const text = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, name) => {
    if (!Object.hasOwn(values, name)) missing.add(name)
    return String(values[name])
  })
  if (missing.size > 0) throw new Error(`${templateFile}: no value for ${[...missing].map(name => `{{${name}}}`).join(', ')}`)
  await writeFile(outFile, text)
  return text
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function accepts (port) {
  return await new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Whether 127.0.0.1:port completes a TLS handshake showing the certificate `fingerprint256`: the proxy itself is
 * listening there, not whoever took the port first (nginx keeps retrying a busy port for seconds before it gives up).
 */
export async function servesCertificate (port, { ca, servername, fingerprint256 }) {
  return await new Promise(resolve => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername }, () => {
      const served = socket.getPeerX509Certificate()?.fingerprint256
      socket.destroy()
      resolve(served === fingerprint256)
    })
    socket.once('error', () => resolve(false))
    socket.setTimeout(hangLimit(10_000), () => { socket.destroy(); resolve(false) })
  })
}

/**
 * Spawns `command args` in a process group of its own and waits (at most `readyMs`) until `ready()` resolves true.
 * Resolves with `{ child, output, exited, stop }`; rejects with the process's output if it exits first.
 */
export async function spawnProxy (command, args, { ready, env = {}, cwd, readyMs = hangLimit(30_000) }) {
  const [file, fileArgs] = TIMEOUT_BINARY === null ? [command, args] : [TIMEOUT_BINARY, ['-s', 'KILL', String(LIFETIME_S), command, ...args]]
  const child = spawn(file, fileArgs, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  groups.add(child.pid)
  let output = ''
  const keep = chunk => { output = (output + chunk).slice(-32_768) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  const stop = async () => {
    killGroup(child.pid)
    await Promise.race([exited, delay(2000)])
    groups.delete(child.pid)
  }
  const deadline = Date.now() + readyMs
  let ended = null
  exited.then(result => { ended = result })
  for (;;) {
    if (ended !== null) {
      await stop()
      throw new ProxyStartError(`${command} exited (${ended.code ?? ended.signal}) before listening:\n${output}`, output)
    }
    if (await ready()) break
    if (Date.now() > deadline) {
      await stop()
      throw new ProxyStartError(`${command} was not ready within ${readyMs} ms:\n${output}`, output)
    }
    await delay(25)
  }
  return { child, output: () => output, exited, stop }
}

export class ProxyStartError extends Error {
  constructor (message, output) {
    super(message)
    this.output = output
  }
}

/** Whether a start failed because a port was taken between freePort() and the proxy's bind. */
export const portTaken = err => err instanceof ProxyStartError && /address already in use|cannot bind socket|EADDRINUSE/i.test(err.output)

/** The pids of a process's children: a reload that replaced a proxy's workers shows new ones. */
export async function childPids (pid) {
  const listed = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => null)
  if (listed !== null) return listed.trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b)
  // Kernels without CONFIG_PROC_CHILDREN: every process's parent, from /proc/PID/stat.
  const pids = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null)
    // The fields after the command's closing parenthesis: state, ppid, ...
    const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields !== undefined && Number(fields[1]) === pid && fields[0] !== 'Z') pids.push(Number(entry))
  }
  return pids.sort((a, b) => a - b)
}
