// @peculiar/x509 needs reflect-metadata loaded first and a WebCrypto provider; this module is the one place that sets both up.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

export { x509 }
export const subtle = webcrypto.subtle
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair
export type AlgorithmParams = webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams | webcrypto.EcdsaParams | webcrypto.Algorithm
