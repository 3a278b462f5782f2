// Copied from mtls-core's fingerprint256 (src/identity.ts): mtls-pki is a leaf and depends on no workspace package.
import { createHash } from 'node:crypto'

/** SHA-256 of DER in Node's `X509Certificate#fingerprint256` form (`AB:CD:...`); works for CRLs too. */
export function fingerprint256 (der: Uint8Array | ArrayBuffer): string {
  return createHash('sha256').update(der instanceof ArrayBuffer ? new Uint8Array(der) : der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:')
}
