import { unknownOption } from 'mtls-core/internal'
import { PkiError } from './errors.js'
import type { ValidityOptions } from './validity.js'

export const VALIDITY_KEYS = ['notBefore', 'notAfter', 'days'] as const satisfies ReadonlyArray<keyof ValidityOptions>

/**
 * Throws ERR_MTLS_PKI_INVALID_OPTION when `options` is not an object or has a key not in `known`: from JavaScript,
 * `issue({ spifeId })` would otherwise make a certificate without the SPIFFE ID a test meant to check.
 */
export function checkOptionKeys (options: unknown, known: readonly string[], where: string): void {
  if (typeof options !== 'object' || options === null) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `${where}: options must be an object; got ${options === null ? 'null' : typeof options}`)
  const message = unknownOption(options, known, where)
  if (message !== null) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', message)
}
