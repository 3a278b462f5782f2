import type { Trust, TrustRefusal } from 'mtls-core/internal'
import { NOT_RECORDED, firstRefusal, type ConnectionRecord } from './connection-records.js'
import type { HandshakeFailureReason } from './handshake-stats.js'

/**
 * Why require mode refuses a connection OpenSSL let through, or `null`: no certificate (only a resumed session
 * of another server can arrive so), a CA:TRUE leaf, and on a resumed session (which OpenSSL does not verify again)
 * a certificate or chain past its validity, or CRLs past their next update. The certificate is read from the DER
 * in the TLS session, so a connection costs no Node certificate object; a full handshake, verified by OpenSSL a
 * moment ago, reads nothing more.
 */
export function leafRefusal (record: ConnectionRecord, trust: Trust): HandshakeFailureReason | null {
  if (record.certificate === null) return 'no_certificate'
  const fields = record.fields
  if (fields === null) return 'bad_certificate'
  if (fields.isCa) return 'ca_as_leaf'
  if (!record.resumed) return null
  const now = Date.now()
  if (record.validUntil < now) return 'expired'
  if (fields.notBefore.getTime() > now) return 'not_yet_valid'
  if (trust.freshUntil < now) return 'other'
  return null
}

/**
 * For trust kept by SPIFFE trust domain, where OpenSSL verified the chain against every bundle at once: the peer's
 * chain must end in the bundle of its own trust domain, or a federated CA could speak for ours. One bundle holding
 * every root: a look at the SPIFFE ID. Federated bundles: the anchor of the chain, found through the CAs of the
 * trust whose keys signed it (checked once per certificate and trust), else through what the peer sent. A resumed
 * session shows no chain: it is held to its trust domain by the chains recorded for its certificate here (each of
 * them), or by the CAs of the trust that signed it; when neither tells, it is refused (`ERR_MTLS_CHAIN_NOT_RECORDED`):
 * the ticket proves only that a server of this trust issued it, not that its handshake was not refused (optional
 * mode lets a refused connection go on, with its ticket).
 */
export function trustDomainRefusal (record: ConnectionRecord, trust: Trust): TrustRefusal | null {
  const fields = record.fields
  if (trust.trustDomains === null || fields === null) return null
  const { trustDomain, refusal } = trust.peerTrustDomain(fields)
  if (refusal !== null || trustDomain === trust.soleTrustDomain) return refusal
  const fromTrust = trust.chainFromTrust(record.certificate as Buffer)
  const chains = fromTrust === null ? record.chains() : [fromTrust]
  return chains.length === 0 ? NOT_RECORDED : firstRefusal(chains, chain => trust.trustDomainRefusal(chain))
}
