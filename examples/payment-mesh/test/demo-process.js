// Runs the demo as `pnpm demo` does: a real process, real TLS on 127.0.0.1, never longer than `limitMs`.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { hangLimit } from './hang-limit.js'

export const demo = fileURLToPath(new URL('../src/demo.js', import.meta.url))
export const exampleDir = fileURLToPath(new URL('..', import.meta.url))

/**
 * Starts `command args` (the demo under Node by default) in a process group of its own, as a terminal runs a job,
 * so that `interrupt()` is Ctrl-C: SIGINT to every process of the group. `exited` resolves with
 * `{ code, signal, output }` (stdout and stderr together); the group is killed after `limitMs`, a hang limit (the
 * whole story takes a few seconds on a quiet machine).
 */
export function startDemo (args, { env = {}, command = process.execPath, commandArgs = [demo], limitMs = hangLimit(60_000) } = {}) {
  const child = spawn(command, [...commandArgs, ...args], { cwd: exampleDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  const waiters = []
  const onData = chunk => {
    output += chunk
    for (const waiter of waiters.splice(0)) {
      if (output.includes(waiter.text)) waiter.resolve(output)
      else waiters.push(waiter)
    }
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const killGroup = signal => { try { process.kill(-child.pid, signal) } catch {} }
  const timer = setTimeout(() => killGroup('SIGKILL'), limitMs)
  const exited = new Promise(resolve => child.on('close', (code, signal) => {
    clearTimeout(timer)
    for (const waiter of waiters.splice(0)) waiter.resolve(output)
    resolve({ code, signal, output })
  }))
  return {
    child,
    exited,
    output: () => output,
    /** Resolves with the output so far once it contains `text` (or once the process has ended). */
    waitFor: text => output.includes(text) ? Promise.resolve(output) : new Promise(resolve => waiters.push({ text, resolve })),
    interrupt: () => killGroup('SIGINT'),
    /** For t.teardown: whatever is left of the group. */
    kill: () => killGroup('SIGKILL')
  }
}

/** The temporary directory the demo says it made its certificates in. */
export const certificateDir = output => output.match(/, in (\S+payment-mesh-\S+)$/m)?.[1]

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function listening (port) {
  return await new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}
