import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from '../src/cli.js'

/** What one run of the CLI printed and returned. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI in this process, as `mtls-pki ARGV...`, capturing what it prints. */
export async function cli (...argv: string[]): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  return { code, stdout, stderr }
}

/** Runs the installed `bin/mtls-pki.js` in a child process (needs `pnpm build`), as a user's shell would. */
export async function cliProcess (...argv: string[]): Promise<CliResult> {
  return await cliProcessUnder([], ...argv)
}

/** cliProcess run by another program: `cliProcessUnder(['prlimit', '--fsize=1024:'], 'issue', ...)`. */
export async function cliProcessUnder (wrapper: readonly string[], ...argv: string[]): Promise<CliResult> {
  const bin = fileURLToPath(new URL('../bin/mtls-pki.js', import.meta.url))
  const [command, ...args] = [...wrapper, process.execPath, bin, ...argv] as [string, ...string[]]
  return await new Promise(resolve => {
    execFile(command, args, (err, stdout, stderr) => {
      // A child killed by a signal gets the shell's status, 128 + the signal's number, not 0.
      resolve({ code: err === null ? 0 : err.signal === null || err.signal === undefined ? Number(err.code) : 128 + constants.signals[err.signal], stdout, stderr })
    })
  })
}

/** A fresh directory under the system's temporary directory, removed when the test ends. */
export async function tempDir (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-pki-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** What a wrong argument prints: what is wrong, then where to read the usage. */
export function usageError (command: string | null, message: string): string {
  return command === null
    ? `mtls-pki: ${message}\nRun "mtls-pki --help" for usage.\n`
    : `mtls-pki ${command}: ${message}\nRun "mtls-pki ${command} --help" for usage.\n`
}
