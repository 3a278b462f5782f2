// @peculiar/x509, the parser of record, needs reflect-metadata loaded first and a WebCrypto provider.
// This module is the one place in the workspace that sets both up; mtls-pki uses it too.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

export { x509 }
