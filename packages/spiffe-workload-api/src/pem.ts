import { toPem } from 'mtls-core/internal'
import type { X509Bundles, X509Svid } from './x509-context.js'

/** DER blocks as PEM text, each ending with a newline so that they can be joined. */
export function derToPem (blocks: readonly Buffer[], label = 'CERTIFICATE'): string {
  return blocks.map(der => toPem(der, label)).join('')
}

/** An SVID as the PEM strings Node's TLS options take: `cert` (leaf first), `key` (PKCS#8), `ca` (the bundles given). */
export function svidToPem (svid: X509Svid, bundles?: X509Bundles): { cert: string, key: string, ca: string } {
  const anchors = bundles === undefined ? svid.bundle : [...bundles.values()].flat()
  return {
    cert: derToPem(svid.certificates),
    key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    ca: derToPem(anchors)
  }
}
