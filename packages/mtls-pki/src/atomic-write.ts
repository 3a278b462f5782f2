import { randomBytes } from 'node:crypto'
import { lstat, mkdir, open, readlink, rename, rm } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { PkiError } from './errors.js'

/** One file mtls-pki writes: a certificate, a CRL, revoked.json, or a private key (`secret`). */
export interface FileToWrite {
  readonly file: string
  readonly content: string
  /** Created with mode 0600 (never widened, never changed afterwards); otherwise 0666 less the umask. */
  readonly secret?: boolean
}

/**
 * Writes each file whole and never through a link. Every folder and target is checked first, so one refusal
 * writes nothing: a symbolic link is refused (ERR_MTLS_PKI_SYMLINK_REFUSED), as is a target that is not a
 * regular file (ERR_MTLS_PKI_NOT_A_FILE). Each content then goes to a new temporary file beside its target,
 * created exclusively with its final mode and flushed; only when all are complete are they renamed over their
 * targets. A failure removes the temporary files and leaves every old file as it was
 * (ERR_MTLS_PKI_FILE_UNWRITABLE, naming the target).
 */
export async function writeFilesAtomically (files: readonly FileToWrite[]): Promise<void> {
  for (const { file } of files) await checkDirectory(dirname(file), file)
  for (const { file } of files) await checkTarget(file)
  const pending: Array<{ temporary: string, file: string }> = []
  try {
    for (const entry of files) pending.push({ temporary: await naming(entry.file, async () => await writeTemporary(entry)), file: entry.file })
    // rename() replaces a link planted after the check instead of following it: the check only makes the refusal clear.
    for (let next = pending[0]; next !== undefined; next = pending[0]) {
      const { temporary, file } = next
      await naming(file, async () => await rename(temporary, file))
      pending.shift()
    }
  } finally {
    await Promise.all(pending.map(async ({ temporary }) => await rm(temporary, { force: true })))
  }
}

/** Makes a folder and those above it where missing; a failure is ERR_MTLS_PKI_FILE_UNWRITABLE naming the folder. */
export async function createDirectory (dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true })
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_FILE_UNWRITABLE', `${dir}: cannot create directory (${systemReason(err)})`, { file: dir, cause: err })
  }
}

async function writeTemporary ({ file, content, secret }: FileToWrite): Promise<string> {
  // 'wx' is O_CREAT | O_EXCL: it never opens an existing file, nor follows a link, under this random name.
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`)
  const handle = await open(temporary, 'wx', secret === true ? 0o600 : 0o666)
  let complete = false
  try {
    await handle.writeFile(content)
    await handle.sync() // on disk before the rename, so a crash leaves the old file or the whole new one
    complete = true
  } finally {
    await handle.close()
    if (!complete) await rm(temporary, { force: true })
  }
  return temporary
}

async function checkDirectory (dir: string, file: string): Promise<void> {
  let found: Stats
  try {
    found = await lstat(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new PkiError('ERR_MTLS_PKI_FILE_UNWRITABLE', `${file}: cannot write (${code === 'ENOENT' ? `no such directory ${dir}` : `${dir}: ${systemReason(err)}`})`, { file, cause: err })
  }
  if (found.isSymbolicLink()) {
    throw new PkiError('ERR_MTLS_PKI_SYMLINK_REFUSED', `${dir} is a symbolic link (to ${await readlink(dir)}); mtls-pki does not write into a linked directory: give the directory itself`, { file: dir })
  }
  if (!found.isDirectory()) throw new PkiError('ERR_MTLS_PKI_FILE_UNWRITABLE', `${file}: cannot write (${dir} is not a directory)`, { file })
}

async function checkTarget (file: string): Promise<void> {
  const found = await naming(file, async () => await lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null
    throw err
  }))
  if (found === null || found.isFile()) return
  if (found.isSymbolicLink()) {
    throw new PkiError('ERR_MTLS_PKI_SYMLINK_REFUSED', `${file} is a symbolic link (to ${await readlink(file)}); mtls-pki never writes through a link: remove it, or write to the file it points to`, { file })
  }
  const what = found.isDirectory() ? 'a directory' : 'a special file (a pipe, socket or device)'
  throw new PkiError('ERR_MTLS_PKI_NOT_A_FILE', `${file} is ${what}, not a regular file; mtls-pki replaces regular files only`, { file })
}

// A file system error says which file the user asked for, never the temporary name; any other error is a bug and passes.
async function naming<T> (file: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (typeof (err as NodeJS.ErrnoException).syscall !== 'string') throw err
    throw new PkiError('ERR_MTLS_PKI_FILE_UNWRITABLE', `${file}: cannot write (${systemReason(err)})`, { file, cause: err })
  }
}

// "EFBIG: file too large, write" → "EFBIG: file too large"
function systemReason (err: unknown): string {
  return (err as Error).message.split(', ')[0] as string
}
