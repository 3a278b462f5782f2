// @peculiar/x509 comes set up (reflect-metadata, WebCrypto provider) from mtls-core.
import { webcrypto } from 'node:crypto'
import { x509 } from 'mtls-core'

export { x509 }
export const subtle = webcrypto.subtle
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair
export type AlgorithmParams = webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams | webcrypto.EcdsaParams | webcrypto.Algorithm
