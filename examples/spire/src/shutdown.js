// How both services stop: on SIGTERM or SIGINT, once.
import { log } from './svid-log.js'

/**
 * On the first SIGTERM or SIGINT: logs it, awaits `close` (the service's own resources, then its source), and
 * exits 0, or 1 when closing failed. Returns whether the service is stopping, for loops that must not go on.
 */
export function closeOnSignals (name, close) {
  let stopping = false
  const stop = signal => {
    if (stopping) return
    stopping = true
    log(`${name}: ${signal}, closing`)
    Promise.resolve().then(close).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  return () => stopping
}
