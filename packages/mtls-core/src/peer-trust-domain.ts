import type { CertificateFields } from './der.js'
import { parseSpiffeId } from './spiffe-id.js'

/** Why a peer certificate has no trust domain among `trustDomains`: the code OpenSSL-style verdicts use, and a sentence. */
export interface TrustDomainRefusal {
  readonly code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED'
  readonly message: string
}

/**
 * The SPIFFE trust domain of a peer's certificate, for a trust kept by trust domain: its one SPIFFE ID's (an X.509-SVID
 * has one), refused when it has none or several, when the ID is invalid, or when `trustDomains` holds no bundle for it.
 */
export function peerTrustDomain (fields: Pick<CertificateFields, 'uris'>, trustDomains: ReadonlySet<string>): { trustDomain: string | null, refusal: TrustDomainRefusal | null } {
  const ids = fields.uris.filter(uri => uri.toLowerCase().startsWith('spiffe://'))
  if (ids.length !== 1) return { trustDomain: null, refusal: untrusted(`the trust is kept by SPIFFE trust domain, and the certificate has ${ids.length} SPIFFE IDs: an X.509-SVID has one`) }
  let trustDomain: string
  try {
    trustDomain = parseSpiffeId(ids[0] as string).trustDomain
  } catch (err) {
    return { trustDomain: null, refusal: untrusted(`the certificate's SPIFFE ID is invalid (${(err as Error).message})`) }
  }
  if (!trustDomains.has(trustDomain)) return { trustDomain, refusal: untrusted(`no trust bundle for the trust domain ${trustDomain}`) }
  return { trustDomain, refusal: null }
}

function untrusted (message: string): TrustDomainRefusal {
  return Object.freeze({ code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message })
}
