// unknownOption and optionKeys are copied from mtls-core/src/option-keys.ts: mtls-pki is a leaf and depends on no workspace package.
import { closestName } from './closest-name.js'
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

/** Why `options` is refused for a key not in `known`, naming the key, `where` and the closest known key; `null` when every key is known. */
export function unknownOption (options: object, known: readonly string[], where: string): string | null {
  const key = optionKeys(options).find(key => !known.includes(key))
  if (key === undefined) return null
  const closest = closestName(key, known)
  return `${where}: unknown option ${JSON.stringify(key)}${closest === undefined ? '' : ` (did you mean ${JSON.stringify(closest)}?)`}; known options: ${known.join(', ')}`
}

// Own enumerable keys, then those its prototypes define short of Object.prototype: a class getter or layered default counts.
function optionKeys (options: object): string[] {
  const keys = Object.keys(options)
  for (let proto = Object.getPrototypeOf(options) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key !== 'constructor' && !keys.includes(key)) keys.push(key)
    }
  }
  return keys
}
