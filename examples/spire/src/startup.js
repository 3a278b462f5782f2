// How both services fail to start: one line on stderr, exit 1. A missing SPIFFE_ENDPOINT_SOCKET or an agent that
// cannot be reached is a setup problem for whoever starts the service; the error's code and message say what it
// is, and a stack trace (or an unhandled rejection) would only bury them.
import { logError } from './svid-log.js'

/**
 * How long createX509Source waits for the first SVID: WORKLOAD_API_TIMEOUT_MS, else its default (30 s), long enough
 * for an agent that starts at the same time to attest the workload.
 */
export const workloadApiTimeoutMs = process.env.WORKLOAD_API_TIMEOUT_MS === undefined ? undefined : Number(process.env.WORKLOAD_API_TIMEOUT_MS)

/** Awaits `start`; if it fails, logs `<name>: cannot start: <code>: <message>` and exits 1. */
export async function startOrExit (name, start) {
  try {
    return await start()
  } catch (err) {
    // Messages quote other errors (the last gRPC error, a socket's): keep it to one line whatever they hold.
    logError(`${name}: cannot start: ${err?.code ?? err?.name ?? 'Error'}: ${String(err?.message ?? err).replace(/\s+/g, ' ')}`)
    process.exit(1)
  }
}
