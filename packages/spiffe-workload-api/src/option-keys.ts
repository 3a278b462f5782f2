import { WorkloadApiError } from './errors.js'

/** Unknown option keys are errors: a misspelt option must not silently fall back to a default. */
export function checkOptionKeys (options: object, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object') {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: options must be an object`)
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: unknown option ${JSON.stringify(key)} (known: ${known.join(', ')})`)
    }
  }
}
