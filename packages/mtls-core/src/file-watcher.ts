import { watch, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'
import { MaterialError } from './errors.js'

export interface FileWatchOptions {
  /** Quiet time after the last event before `onChange`, in ms. Default: 100. */
  debounceMs?: number
  /** Poll every this many ms (`true`: 1000) instead of watching. Default: `false`. */
  poll?: boolean | number
  /** Called when a directory can no longer be watched. */
  onError?: (error: MaterialError) => void
}

export interface FileWatcher {
  close: () => void
}

/**
 * Calls `onChange` (debounced) whenever something changes in the directories of `files`. It watches
 * directories, not files, so Kubernetes' atomic `..data` symlink swap, editors' rename-on-save and
 * deletion followed by re-creation are all seen; with `poll` it calls `onChange` on a timer instead, and
 * the caller compares contents. Timers are unref'd. Throws MaterialError when a directory cannot be watched.
 */
export function watchFiles (files: readonly string[], onChange: () => void, options: FileWatchOptions = {}): FileWatcher {
  let closed = false
  let debounce: NodeJS.Timeout | null = null
  let poll: NodeJS.Timeout | null = null
  const watchers: FSWatcher[] = []
  const close = (): void => {
    closed = true
    for (const watcher of watchers) watcher.close()
    if (debounce !== null) clearTimeout(debounce)
    if (poll !== null) clearInterval(poll)
  }
  const fire = (): void => {
    debounce = null
    if (!closed) onChange()
  }

  if (options.poll !== undefined && options.poll !== false) {
    poll = setInterval(fire, options.poll === true ? 1000 : options.poll)
    poll.unref()
    return { close }
  }
  for (const dir of new Set(files.map(file => dirname(file)))) {
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        if (closed) return
        if (debounce !== null) clearTimeout(debounce)
        debounce = setTimeout(fire, options.debounceMs ?? 100)
        debounce.unref()
      })
      watcher.on('error', err => options.onError?.(new MaterialError('ERR_MTLS_MATERIAL_FILE_UNREADABLE', `${dir}: watching stopped (${err.message}); reload() still works`, { file: dir, cause: err })))
      watchers.push(watcher)
    } catch (err) {
      close()
      throw new MaterialError('ERR_MTLS_MATERIAL_FILE_UNREADABLE', `${dir}: cannot watch (${(err as Error).message}); pass poll: true on filesystems without change events`, { file: dir, cause: err })
    }
  }
  return { close }
}
