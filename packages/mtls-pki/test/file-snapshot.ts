import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * What a folder holds, entry by entry: a file's content and mode, a link's target, or the kind of anything else.
 * Two equal snapshots mean nothing was written, replaced or left behind (a temporary file would be an entry).
 */
export async function snapshot (dir: string): Promise<Record<string, string>> {
  const entries: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name)
    const found = await lstat(path)
    if (found.isSymbolicLink()) entries[name] = `link to ${await readlink(path)}`
    else if (found.isFile()) entries[name] = `file ${(found.mode & 0o777).toString(8)}: ${await readFile(path, 'utf8')}`
    else entries[name] = found.isDirectory() ? 'directory' : 'special file'
  }
  return entries
}
