// @peculiar/x509, which the CA signs with, needs reflect-metadata loaded first and a WebCrypto provider.
// This module is the one place in mtls-pki that sets both up; `mtls-pki/x509` offers it to tests.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

export { x509 }
export const subtle = webcrypto.subtle
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair
export type AlgorithmParams = webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams | webcrypto.EcdsaParams | webcrypto.Algorithm
