import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { codeOf, describeThrown } from './errors.js'

/** A file that is not a regular file, or larger than allowed: `code` says which, the message what it is (`is a FIFO, not a regular file`). */
export class FileReadError extends Error {
  readonly code: 'NOT_A_FILE' | 'TOO_LARGE'

  constructor (code: 'NOT_A_FILE' | 'TOO_LARGE', message: string) {
    super(message)
    this.code = code
  }
}

/**
 * Reads a regular file of at most `maxBytes`, whatever it holds. Opened without blocking and checked before
 * reading: a FIFO put where a certificate belongs would otherwise hold one of libuv's four threads forever
 * (and with four of them, every file read of the process), and a device would be read without end. Reads
 * to the end, however the file grows while it is read, and never more than `maxBytes + 1` bytes. Throws
 * FileReadError, or Node's own error (`ENOENT`, `EACCES`, ...).
 */
export async function readRegularFile (file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) {
      const kind = stats.isDirectory() ? 'is a directory' : stats.isFIFO() ? 'is a FIFO, not a regular file' : 'is a device or socket, not a regular file'
      throw new FileReadError('NOT_A_FILE', kind)
    }
    const chunks: Buffer[] = []
    let length = 0
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - length))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, length)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      length += bytesRead
      if (length > maxBytes) throw new FileReadError('TOO_LARGE', `more than ${maxBytes} bytes`)
    }
    return Buffer.concat(chunks, length)
  } finally {
    await handle.close()
  }
}

/** Why a file could not be read, in words for a message such as `FILE: cannot read (REASON)`: `no such file`, `permission denied`, `is a directory`, FileReadError's own. */
export function readFailureReason (err: unknown): string {
  if (err instanceof FileReadError) return err.message
  const code = codeOf(err, '')
  return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : describeThrown(err)
}
