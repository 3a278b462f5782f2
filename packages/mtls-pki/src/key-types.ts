import { createPrivateKey } from 'node:crypto'
import { PkiError } from './errors.js'
import { subtle, type AlgorithmParams, type CryptoKey, type CryptoKeyPair } from './x509.js'

/** Key algorithms the CA can make: ECDSA P-256 (default), P-384, Ed25519, RSA 2048 and 3072. */
export type KeyType = 'p256' | 'p384' | 'ed25519' | 'rsa2048' | 'rsa3072'

export const KEY_TYPES: readonly KeyType[] = ['p256', 'p384', 'ed25519', 'rsa2048', 'rsa3072']

interface KeyAlgorithm {
  /** WebCrypto parameters to generate or import the key. */
  readonly generate: AlgorithmParams
  /** WebCrypto parameters to sign with the key. */
  readonly sign: AlgorithmParams
  /** Words for people: `ECDSA P-256`. */
  readonly description: string
}

const rsa = (modulusLength: number): KeyAlgorithm => ({
  generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  sign: { name: 'RSASSA-PKCS1-v1_5' },
  description: `RSA ${modulusLength}`
})

const algorithms: Record<KeyType, KeyAlgorithm> = {
  p256: { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' }, description: 'ECDSA P-256' },
  p384: { generate: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' }, description: 'ECDSA P-384' },
  ed25519: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, description: 'Ed25519' },
  rsa2048: rsa(2048),
  rsa3072: rsa(3072)
}

export function keyAlgorithm (keyType: KeyType): KeyAlgorithm {
  const algorithm = algorithms[keyType]
  if (algorithm === undefined) {
    throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `keyType must be one of ${KEY_TYPES.join(', ')}; got ${JSON.stringify(keyType)}`)
  }
  return algorithm
}

export async function generateKeyPair (keyType: KeyType): Promise<CryptoKeyPair> {
  return await subtle.generateKey(keyAlgorithm(keyType).generate, true, ['sign', 'verify']) as CryptoKeyPair
}

/** Which of our key types a PEM private key is; throws for anything else. */
export function keyTypeOfPrivateKey (pem: string, file?: string): KeyType {
  let details
  try {
    const key = createPrivateKey(pem)
    details = { type: key.asymmetricKeyType, ...key.asymmetricKeyDetails }
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file ?? 'private key'}: not a readable private key (${(err as Error).message})`, { file, cause: err })
  }
  if (details.type === 'ec' && details.namedCurve === 'prime256v1') return 'p256'
  if (details.type === 'ec' && details.namedCurve === 'secp384r1') return 'p384'
  if (details.type === 'ed25519') return 'ed25519'
  if (details.type === 'rsa' && details.modulusLength === 2048) return 'rsa2048'
  if (details.type === 'rsa' && details.modulusLength === 3072) return 'rsa3072'
  const what = [details.type, details.namedCurve, details.modulusLength].filter(Boolean).join(' ')
  throw new PkiError('ERR_MTLS_PKI_UNSUPPORTED_KEY', `${file ?? 'private key'}: unsupported key (${what}); use one of ${KEY_TYPES.join(', ')}`, { file })
}

/** Imports a PEM private key (any form Node reads) as a WebCrypto signing key. */
export async function importSigningKey (pem: string, file?: string): Promise<{ keyType: KeyType, privateKey: CryptoKey }> {
  const keyType = keyTypeOfPrivateKey(pem, file)
  const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' })
  const privateKey = await subtle.importKey('pkcs8', pkcs8, keyAlgorithm(keyType).generate, true, ['sign'])
  return { keyType, privateKey }
}
