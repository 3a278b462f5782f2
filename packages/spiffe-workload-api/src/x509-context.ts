import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { parseSpiffeId, parseTrustDomain } from 'mtls-core'
import { readCertificateFields, readTlv } from 'mtls-core/internal'
import { WorkloadApiError } from './errors.js'
import type { RawX509BundlesResponse, RawX509Svid, RawX509SvidResponse } from './proto.js'

/** One X.509-SVID from the agent. */
export interface X509Svid {
  readonly spiffeId: string
  /** DER certificates, leaf first. */
  readonly certificates: readonly Buffer[]
  /** The SVID's private key (it matches the leaf: checked on arrival). */
  readonly privateKey: KeyObject
  /** DER trust anchors of the SVID's own trust domain. */
  readonly bundle: readonly Buffer[]
  /** The agent's label for this SVID, `''` when none. */
  readonly hint: string
}

/** Trust bundles by trust domain name: DER certificates. */
export type X509Bundles = ReadonlyMap<string, readonly Buffer[]>

/** What one FetchX509SVID message says. */
export interface X509Context {
  /** The first is the default SVID. */
  readonly svids: readonly X509Svid[]
  /** The SVIDs' own trust domains and the federated ones. */
  readonly bundles: X509Bundles
  /** DER CRLs. */
  readonly crls: readonly Buffer[]
}

/** What one FetchX509Bundles message says. */
export interface X509BundlesUpdate {
  readonly bundles: X509Bundles
  readonly crls: readonly Buffer[]
}

function invalidResponse (message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_RESPONSE', `invalid Workload API response: ${message}`, { cause })
}

/** Splits concatenated DER certificates (ASN.1 SEQUENCEs) without copying them. */
export function splitDerCertificates (data: Buffer, what: string): Buffer[] {
  const certificates: Buffer[] = []
  for (let offset = 0; offset < data.length;) {
    let end: number
    try {
      end = readTlv(data, offset, data.length, 0x30).end
    } catch (err) {
      throw invalidResponse(`${what}: not a DER certificate at byte ${offset} (${(err as Error).message})`, err)
    }
    certificates.push(data.subarray(offset, end))
    offset = end
  }
  return certificates
}

/** The trust domain name of an SVID's SPIFFE ID (`spiffe://td/path` → `td`). */
export function trustDomainOf (spiffeId: string): string {
  let id
  try {
    id = parseSpiffeId(spiffeId)
  } catch (err) {
    throw invalidResponse(`SVID ID ${JSON.stringify(spiffeId)} is not a SPIFFE ID (${(err as Error).message})`, err)
  }
  if (id.path === '') throw invalidResponse(`SVID ID ${JSON.stringify(spiffeId)} has no path: a workload's SPIFFE ID has one`)
  return id.trustDomain
}

function toSvid (raw: RawX509Svid, index: number): X509Svid {
  const what = `SVID ${index} (${JSON.stringify(raw.spiffeId)})`
  trustDomainOf(raw.spiffeId)
  const certificates = splitDerCertificates(raw.x509Svid, `${what} certificates`)
  if (certificates.length === 0) throw invalidResponse(`${what} has no certificate`)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: raw.x509SvidKey, format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw invalidResponse(`${what} key is not PKCS#8 DER`, err)
  }
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(certificates[0]!)
  } catch (err) {
    throw invalidResponse(`${what} leaf is not a certificate`, err)
  }
  if (!leaf.checkPrivateKey(privateKey)) throw invalidResponse(`${what} key does not match its leaf certificate`)
  // The message's spiffe_id is only a label: the certificate's own SPIFFE ID is the identity, and they must agree.
  const ids = readCertificateFields(certificates[0]!).uris.filter(uri => uri.toLowerCase().startsWith('spiffe://'))
  if (ids.length !== 1 || ids[0] !== raw.spiffeId) {
    throw invalidResponse(`${what}: the leaf certificate carries ${ids.length === 1 ? JSON.stringify(ids[0]) : `${ids.length} SPIFFE IDs`}, not the SVID's ID`)
  }
  const bundle = splitDerCertificates(raw.bundle, `${what} bundle`)
  return Object.freeze({ spiffeId: raw.spiffeId, certificates: Object.freeze(certificates), privateKey, bundle: Object.freeze(bundle), hint: raw.hint })
}

// Keyed by trust domain name: the agent may key federated bundles by `spiffe://td` (the specification's form) or `td`.
function toBundles (entries: Record<string, Buffer>, into: Map<string, readonly Buffer[]>): void {
  for (const [key, data] of Object.entries(entries)) {
    let trustDomain: string
    try {
      trustDomain = parseTrustDomain(key)
    } catch (err) {
      throw invalidResponse(`bundle key ${JSON.stringify(key)} is not a trust domain (${(err as Error).message})`, err)
    }
    into.set(trustDomain, Object.freeze(splitDerCertificates(data, `bundle of ${JSON.stringify(key)}`)))
  }
}

export function toX509Context (raw: RawX509SvidResponse): X509Context {
  if (raw.svids.length === 0) throw invalidResponse('no SVID in the message')
  const svids = raw.svids.map(toSvid)
  const bundles = new Map<string, readonly Buffer[]>()
  toBundles(raw.federatedBundles, bundles)
  // The SVIDs' own bundles win over a federated entry of the same name.
  for (const svid of svids) bundles.set(trustDomainOf(svid.spiffeId), svid.bundle)
  return Object.freeze({ svids: Object.freeze(svids), bundles, crls: Object.freeze([...raw.crl]) })
}

export function toX509BundlesUpdate (raw: RawX509BundlesResponse): X509BundlesUpdate {
  const bundles = new Map<string, readonly Buffer[]>()
  toBundles(raw.bundles, bundles)
  return Object.freeze({ bundles, crls: Object.freeze([...raw.crl]) })
}
