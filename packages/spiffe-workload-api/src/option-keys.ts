import { unknownOption } from 'mtls-core/internal'
import { WorkloadApiError } from './errors.js'

/** Unknown option keys are errors: a misspelt option must not silently fall back to a default (mtls-core's check). */
export function checkOptionKeys (options: object, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object') {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: options must be an object`)
  }
  const unknown = unknownOption(options, known, where)
  if (unknown !== null) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', unknown)
}

/** A timeout option: a positive number of milliseconds. */
export function checkTimeout (timeoutMs: unknown, where: string): number {
  if (typeof timeoutMs !== 'number' || !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: timeoutMs must be a positive number; got ${String(timeoutMs)}`)
  }
  return timeoutMs
}
