import { formatName, readCrlFields, type CrlFields } from './der.js'
import { itemError, type PemItem } from './material-read.js'
import { readPemBlocks } from './pem.js'

/** What a status page shows of a CRL. */
export interface CrlSummary {
  readonly issuer: string
  readonly thisUpdate: Date
  readonly nextUpdate: Date | null
  readonly revokedCount: number
}

/** The CRLs of one input, each as PEM and summary; throws MaterialError for one that is malformed or past its next update. */
export function readCrls (item: PemItem, now: number): Array<{ pem: string, summary: CrlSummary }> {
  const blocks = readPemBlocks(item.text).filter(block => block.label === 'X509 CRL')
  if (blocks.length === 0) throw itemError('ERR_MTLS_MATERIAL_NO_PEM', item, 'no CRL (-----BEGIN X509 CRL-----) found')
  return blocks.map((block, index) => {
    let crl: CrlFields
    try {
      crl = readCrlFields(block.der)
    } catch (err) {
      throw itemError('ERR_MTLS_MATERIAL_CRL_MALFORMED', item, `CRL ${index + 1} is malformed (${(err as Error).message})`, err)
    }
    const issuer = formatName(block.der, crl.issuer)
    // OpenSSL refuses every peer certificate once a loaded CRL is past its next update.
    if (crl.nextUpdate !== null && crl.nextUpdate.getTime() < now) {
      throw itemError('ERR_MTLS_MATERIAL_CRL_EXPIRED', item, `CRL ${index + 1} (${issuer}) was due for renewal at ${crl.nextUpdate.toISOString()}`)
    }
    return {
      pem: block.pem,
      summary: Object.freeze({ issuer, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revokedCount: crl.revoked.size })
    }
  })
}
