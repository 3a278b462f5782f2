// The tests' way of running this example's scripts: real processes, their output read line by line, waits that end
// on a line or on the process's exit, and time limits only against hangs.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * `ms` scaled by MTLS_TEST_TIME_FACTOR (1 when unset), as the workspace's test-support does: a limit after which a
 * wait is a hang, written for a quiet two-core machine with room to spare, never a speed target.
 */
export function hangLimit (ms) {
  const value = process.env.MTLS_TEST_TIME_FACTOR
  const factor = value === undefined || value === '' ? 1 : Number(value)
  if (!Number.isFinite(factor) || factor < 1) throw new Error(`MTLS_TEST_TIME_FACTOR must be a number of at least 1, got ${JSON.stringify(value)}`)
  return Math.round(ms * factor)
}

/** Resolves once `condition()` holds, checking every 10 ms; rejects naming `what` after `limitMs` (a hang limit). */
export async function until (condition, what, limitMs = 10_000) {
  const deadline = Date.now() + hangLimit(limitMs)
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Whether a process with this pid still exists (a zombie counts until it is reaped). */
export function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/**
 * Starts `node src/<script> ...args` in a process group of its own, as a terminal runs a job, so that
 * `interrupt()` is Ctrl-C (SIGINT to the script and every process it started) and teardown kills whatever is left
 * of the group. `waitFor` resolves with the match of the first line (from now on) that matches `pattern`, and
 * rejects if the process ends first or after `limitMs`; `exited` resolves with `{ code, signal }` once its output
 * is read. `env` entries set to undefined are removed.
 */
export function start (t, script, { args = [], env = {} } = {}) {
  const childEnv = { ...process.env, ...env }
  for (const [name, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[name]
  const child = spawn(process.execPath, [fileURLToPath(new URL(`../src/${script}`, import.meta.url)), ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const lines = []
  const stdout = []
  const stderr = []
  const waiters = new Set()
  const read = (stream, into) => {
    let rest = ''
    stream.setEncoding('utf8').on('data', chunk => {
      const parts = (rest + chunk).split('\n')
      rest = parts.pop()
      for (const line of parts) {
        into.push(line)
        lines.push(line)
        for (const waiter of waiters) waiter.line(line)
      }
    })
    stream.on('end', () => {
      if (rest === '') return
      into.push(rest)
      lines.push(rest)
    })
  }
  read(child.stdout, stdout)
  read(child.stderr, stderr)
  let closed = false
  const exited = new Promise(resolve => child.on('close', (code, signal) => {
    closed = true
    for (const waiter of waiters) waiter.ended()
    resolve({ code, signal })
  }))
  const group = signal => { try { process.kill(-child.pid, signal) } catch {} }
  t.teardown(() => group('SIGKILL'))

  const waitFor = (pattern, what, limitMs = 30_000) => new Promise((resolve, reject) => {
    const fail = why => {
      clearTimeout(timer)
      waiters.delete(waiter)
      reject(new Error(`${script}: ${why} waiting for ${what}; output:\n${lines.join('\n')}`))
    }
    const timer = setTimeout(() => fail('timed out'), hangLimit(limitMs))
    const waiter = {
      line: line => {
        const match = pattern.exec(line)
        if (match === null) return
        clearTimeout(timer)
        waiters.delete(waiter)
        resolve(match)
      },
      ended: () => fail(`exited (${child.exitCode ?? child.signalCode})`)
    }
    if (closed) waiter.ended()
    else waiters.add(waiter)
  })

  /** `exited`, or a failure naming `what` after `limitMs` (the group is then killed). */
  const exit = (what, limitMs = 30_000) => {
    let timer
    const hang = new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        group('SIGKILL')
        reject(new Error(`${script}: timed out waiting for ${what}; output:\n${lines.join('\n')}`))
      }, hangLimit(limitMs))
    })
    return Promise.race([exited, hang]).finally(() => clearTimeout(timer))
  }

  return { child, lines, stdout, stderr, waitFor, exited, exit, interrupt: () => group('SIGINT') }
}
