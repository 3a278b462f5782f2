import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
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
  const bin = fileURLToPath(new URL('../bin/mtls-pki.js', import.meta.url))
  return await new Promise(resolve => {
    execFile(process.execPath, [bin, ...argv], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr })
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
