import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { certificateFields, summarizeCertificate, type CertificateSummary } from './certificate-summary.js'
import { readCrls, type CrlSummary } from './crls.js'
import { TLS_EXTENDED_KEY_USAGE } from './der.js'
import { MaterialError, type MaterialErrorCode } from './errors.js'
import { itemError, type MaterialPems, type PemItem } from './material-read.js'
import { readPemBlocks, toPem } from './pem.js'
import { parseSpiffeId } from './spiffe-id.js'
import { materialTlsOptions } from './tls-options.js'

export interface MaterialOptions {
  /** Which end of the connection this material is for: decides the extended key usage required. */
  side: 'server' | 'client'
  /** Require our own chain to lead to one of the trusted CAs. Default: `true`. */
  verifyOwnChain?: boolean
}

/** Validated certificate material, ready for `tls.createSecureContext`. Frozen. */
export interface Material {
  /** Leaf and intermediates, PEM. */
  readonly cert: string
  /** The private key, unencrypted PKCS#8 PEM (in memory only). */
  readonly key: string
  /** Each trusted CA certificate, PEM. */
  readonly ca: readonly string[]
  /**
   * The trusted CA certificates (PEM) by SPIFFE trust domain, when the trust was given that way (`trustDomains`):
   * a peer's chain must then end at a CA of its own trust domain. `null` otherwise.
   */
  readonly trustDomains: ReadonlyMap<string, readonly string[]> | null
  /** Each CRL, PEM; empty when none was given. */
  readonly crl: readonly string[]
  readonly leaf: CertificateSummary
  readonly intermediates: readonly CertificateSummary[]
  readonly authorities: readonly CertificateSummary[]
  readonly crls: readonly CrlSummary[]
  /** The files it was read from. */
  readonly files: readonly string[]
  /** SHA-256 over every input byte: equal digests mean nothing changed. */
  readonly digest: string
  readonly loadedAt: Date
}

/**
 * Validates material: key matches the leaf, leaf and intermediates within their validity, our chain leads
 * to a trusted CA, the leaf's extended key usage fits its side, CRLs readable and current. A pure function
 * of its inputs and the clock.
 */
export function validateMaterial (pems: MaterialPems, options: MaterialOptions, now = Date.now()): Material {
  if (options.side !== 'server' && options.side !== 'client') {
    throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', `side must be 'server' or 'client'; got ${JSON.stringify(options.side)}`)
  }
  const chain = certificates(pems.cert, 'ERR_MTLS_MATERIAL_NO_PEM')
  const leaf = chain[0] as X509Certificate
  const privateKey = readKey(pems.key, pems.passphrase)
  if (!leaf.checkPrivateKey(privateKey)) {
    // A CA certificate where the leaf belongs is a mix-up of files, not a wrong key: say so, before blaming the key.
    if (certificateFields(leaf).isCa) throw caWhereLeafBelongs(chain, privateKey, pems)
    throw itemError('ERR_MTLS_MATERIAL_KEY_MISMATCH', pems.key, `the private key does not belong to the certificate in ${pems.cert.source} (${leaf.subject.replaceAll('\n', ', ')})`)
  }
  chain.forEach((cert, index) => checkValidity(cert, index === 0 ? 'the certificate' : `intermediate ${index}`, pems.cert, now))

  // Each CA read once: with trustDomains, `pems.ca` holds the same bundles, in the same order, as the trust domains.
  const trustDomains = pems.trustDomains === null ? null : bundlesByTrustDomain(pems.trustDomains)
  const authorities = trustDomains === null ? pems.ca.flatMap(item => authoritiesOf(item)) : [...trustDomains.values()].flat()
  // Our own chain, like a peer's, must end in the bundle of our own trust domain when the trust is kept by trust domain.
  if (options.verifyOwnChain !== false) {
    if (trustDomains === null) checkChain(chain, authorities, pems.ca, pems)
    else {
      const own = ownBundle(leaf, trustDomains, pems)
      checkChain(chain, own.certificates, pems.trustDomains?.get(own.trustDomain) ?? [], pems, own.trustDomain)
    }
  }
  checkExtendedKeyUsage(leaf, options.side, pems.cert)
  const crls = pems.crl.flatMap(item => readCrls(item, now))

  const leafSummary = summarizeCertificate(leaf)
  const cert = chain.map(cert => toPem(cert.raw, 'CERTIFICATE')).join('')
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const pemOf = new Map(authorities.map(cert => [cert, readCa(cert).pem]))
  const ca = [...pemOf.values()]
  const crl = crls.map(crl => crl.pem)
  checkTlsAccepts({ cert, key, ca, crl }, pems)
  return Object.freeze({
    cert,
    key,
    ca: Object.freeze(ca),
    trustDomains: trustDomains === null ? null : new Map([...trustDomains].map(([name, certs]) => [name, Object.freeze(certs.map(cert => pemOf.get(cert) as string))])),
    crl: Object.freeze(crl),
    leaf: leafSummary,
    intermediates: Object.freeze(chain.slice(1).map(summarizeCertificate)),
    authorities: Object.freeze(authorities.map(cert => withOwnDates(readCa(cert).summary))),
    crls: Object.freeze(crls.map(crl => crl.summary)),
    files: Object.freeze([pems.cert, pems.key, ...pems.ca, ...pems.crl].flatMap(item => item.file === undefined ? [] : [item.file])),
    digest: pems.digest,
    loadedAt: new Date(now)
  })
}

function certificates (item: PemItem, emptyCode: MaterialErrorCode): X509Certificate[] {
  const blocks = readPemBlocks(item.text).filter(block => block.label === 'CERTIFICATE')
  if (blocks.length === 0) {
    throw itemError(emptyCode, item, emptyCode === 'ERR_MTLS_MATERIAL_CA_EMPTY' ? 'no CA certificate (-----BEGIN CERTIFICATE-----) found' : 'no certificate (-----BEGIN CERTIFICATE-----) found')
  }
  return blocks.map((block, index) => {
    try {
      const cert = new X509Certificate(block.der)
      certificateFields(cert) // read (and so checked) here; summaries and usage checks reuse it
      return cert
    } catch (err) {
      throw itemError('ERR_MTLS_MATERIAL_CERT_MALFORMED', item, `certificate ${index + 1} is malformed (${(err as Error).message})`, err)
    }
  })
}

function bundlesByTrustDomain (items: ReadonlyMap<string, PemItem[]>): Map<string, X509Certificate[]> {
  return new Map([...items].map(([name, list]) => [name, list.flatMap(item => authoritiesOf(item))]))
}

// Trust bundles come again with every update of a feed (an SVID rotation brings the bundles along, thousands of CAs
// with federation): each CA input is parsed once, and its PEM and summary made once, while its text stays the same.
// The inputs used last are kept, up to 32 MiB of their text: a bundle no longer in use is let go as others come.
const MAX_PARSED_CA_BYTES = 32 * 1024 * 1024
const parsedCaInputs = new Map<string, X509Certificate[]>()
let parsedCaBytes = 0
let caInputsRead = 0
const caForms = new WeakMap<X509Certificate, { readonly pem: string, readonly summary: CertificateSummary }>()

/** CA inputs parsed so far (not found among those parsed before): what the tests count. */
export function caInputsParsed (): number {
  return caInputsRead
}

function authoritiesOf (item: PemItem): X509Certificate[] {
  const known = parsedCaInputs.get(item.text)
  if (known !== undefined) {
    // Used again: the last to be let go.
    parsedCaInputs.delete(item.text)
    parsedCaInputs.set(item.text, known)
    return known
  }
  const parsed = certificates(item, 'ERR_MTLS_MATERIAL_CA_EMPTY')
  caInputsRead++
  parsedCaInputs.set(item.text, parsed)
  parsedCaBytes += item.text.length
  for (const [text] of parsedCaInputs) {
    if (parsedCaBytes <= MAX_PARSED_CA_BYTES || text === item.text) break
    parsedCaInputs.delete(text)
    parsedCaBytes -= text.length
  }
  return parsed
}

// A summary's Dates can be changed by whoever holds them: each material gets its own.
function withOwnDates (summary: CertificateSummary): CertificateSummary {
  return Object.freeze({ ...summary, notBefore: new Date(summary.notBefore), notAfter: new Date(summary.notAfter) })
}

function readCa (cert: X509Certificate): { readonly pem: string, readonly summary: CertificateSummary } {
  let forms = caForms.get(cert)
  if (forms === undefined) caForms.set(cert, forms = { pem: toPem(cert.raw, 'CERTIFICATE'), summary: summarizeCertificate(cert) })
  return forms
}

// The CAs of our own SPIFFE ID's trust domain: an SVID has exactly one SPIFFE ID.
function ownBundle (leaf: X509Certificate, trustDomains: ReadonlyMap<string, X509Certificate[]>, pems: MaterialPems): { trustDomain: string, certificates: X509Certificate[] } {
  const ids = certificateFields(leaf).uris.filter(uri => uri.toLowerCase().startsWith('spiffe://'))
  let trustDomain: string
  try {
    if (ids.length !== 1) throw new Error(`it has ${ids.length} SPIFFE IDs; an X.509-SVID has one`)
    trustDomain = parseSpiffeId(ids[0]).trustDomain
  } catch (err) {
    throw itemError('ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', pems.cert, `the trust is kept by SPIFFE trust domain, and the certificate is not an X.509-SVID: ${(err as Error).message}`)
  }
  const bundle = trustDomains.get(trustDomain)
  if (bundle === undefined || bundle.length === 0) {
    throw itemError('ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', pems.cert, `no trust bundle for its own trust domain ${trustDomain} (bundles: ${[...trustDomains.keys()].join(', ')})`)
  }
  return { trustDomain, certificates: bundle }
}

function readKey (item: PemItem, passphrase: string | undefined): KeyObject {
  if (!readPemBlocks(item.text).some(block => block.label.endsWith('PRIVATE KEY'))) {
    throw itemError('ERR_MTLS_MATERIAL_NO_PEM', item, 'no private key (-----BEGIN PRIVATE KEY----- or similar) found')
  }
  const encrypted = item.text.includes('ENCRYPTED')
  if (encrypted && passphrase === undefined) throw itemError('ERR_MTLS_MATERIAL_KEY_UNREADABLE', item, 'cannot read the private key: the key is encrypted and no passphrase was given')
  try {
    return createPrivateKey(passphrase === undefined ? item.text : { key: item.text, passphrase })
  } catch (err) {
    const reason = encrypted ? 'wrong passphrase' : (err as Error).message
    throw itemError('ERR_MTLS_MATERIAL_KEY_UNREADABLE', item, `cannot read the private key: ${reason}`, err)
  }
}

// What the TLS layer would refuse when the material is applied (a key below OpenSSL's security level, an
// unusable CRL) is refused here, while the old material still serves.
// CA and CRL sets OpenSSL took before: a set it took is not given to it again (thousands of CAs cost it seconds).
const MAX_ACCEPTED_TRUSTS = 16
const acceptedTrusts = new Set<string>()

function checkTlsAccepts (material: { cert: string, key: string, ca: string[], crl: string[] }, pems: MaterialPems): void {
  const hash = createHash('sha256')
  for (const pem of material.ca) hash.update(pem).update('\0')
  hash.update('\u0001')
  for (const pem of material.crl) hash.update(pem).update('\0')
  const trust = hash.digest('hex')
  const known = acceptedTrusts.has(trust)
  try {
    // An empty `ca` list: no CA at all (not Node's default roots).
    createSecureContext(materialTlsOptions(known ? { ...material, ca: [], crl: [] } : material))
    if (!known) {
      if (acceptedTrusts.size >= MAX_ACCEPTED_TRUSTS) acceptedTrusts.delete(acceptedTrusts.values().next().value as string)
      acceptedTrusts.add(trust)
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    throw itemError('ERR_MTLS_MATERIAL_REFUSED_BY_TLS', pems.cert, `the TLS layer refuses this material: ${(err as Error).message}${code === undefined ? '' : ` (${code})`}`, err)
  }
}

function checkValidity (cert: X509Certificate, what: string, item: PemItem, now: number): void {
  const notBefore = new Date(cert.validFrom)
  const notAfter = new Date(cert.validTo)
  if (notBefore.getTime() > now) throw itemError('ERR_MTLS_MATERIAL_NOT_YET_VALID', item, `${what} is not valid until ${notBefore.toISOString()}`)
  if (notAfter.getTime() < now) throw itemError('ERR_MTLS_MATERIAL_EXPIRED', item, `${what} expired at ${notAfter.toISOString()}`)
}

function checkChain (chain: X509Certificate[], authorities: X509Certificate[], caItems: readonly PemItem[], pems: MaterialPems, trustDomain?: string): void {
  const issuedBy = (cert: X509Certificate, candidate: X509Certificate): boolean => cert.checkIssued(candidate) && cert.verify(candidate.publicKey)
  let current = chain[0] as X509Certificate
  const seen = new Set<X509Certificate>()
  for (let depth = 0; depth < 10; depth++) {
    if (authorities.some(ca => issuedBy(current, ca) || ca.fingerprint256 === current.fingerprint256)) return
    const next = chain.find(cert => !seen.has(cert) && cert !== current && issuedBy(current, cert))
    if (next === undefined) break
    seen.add(next)
    current = next
  }
  const cas = caItems.map(item => item.source).join(', ')
  const leaf = chain[0] as X509Certificate
  // The likely cause when the leaf came alone and a CA the trust does not hold issued it: the intermediate was left out.
  const leafAlone = chain.length === 1 && !leaf.checkIssued(leaf) && !authorities.some(ca => ca.subject === leaf.issuer)
  const hint = !leafAlone
    ? ''
    : `; ${pems.cert.file === undefined ? 'the cert option' : 'the file'} holds only the leaf, and its issuer is not a trusted CA: if that issuer is an intermediate CA, give the chain file instead, ` +
      'the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem beside NAME.pem; with cert-manager, tls.crt holds the chain)'
  const where = trustDomain === undefined ? `any trusted CA in ${cas}` : `a CA of its own trust domain ${trustDomain} (${cas})`
  throw itemError('ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', pems.cert, `the chain does not lead to ${where} (no CA issued ${JSON.stringify(current.issuer.replaceAll('\n', ', '))}'s certificate)${hint}`)
}

// What a CA certificate first in the certificate input most likely means, from where the private key's certificate is.
function caWhereLeafBelongs (chain: X509Certificate[], key: KeyObject, pems: MaterialPems): MaterialError {
  const fromFiles = pems.cert.file !== undefined
  const what = `the ${fromFiles ? 'certificate file' : 'cert option'} holds a CA certificate (CA:TRUE, ${JSON.stringify((chain[0] as X509Certificate).subject.replaceAll('\n', ', '))})`
  const later = chain.findIndex((cert, index) => index > 0 && cert.checkPrivateKey(key))
  if (later > 0) return itemError('ERR_MTLS_MATERIAL_CERT_IS_CA', pems.cert, `${what} first: the leaf must come first (the private key belongs to certificate ${later + 1} of it)`)
  const swapped = fromFiles ? 'certFile and caFile' : 'cert and ca'
  const keyIn = pems.ca.find(item => readPemBlocks(item.text).some(block => {
    try {
      return block.label === 'CERTIFICATE' && new X509Certificate(block.der).checkPrivateKey(key)
    } catch {
      return false
    }
  }))
  return itemError('ERR_MTLS_MATERIAL_CERT_IS_CA', pems.cert, keyIn === undefined
    ? `${what} where the leaf belongs: ${swapped} swapped?`
    : `${what} where the leaf belongs: ${swapped} are swapped (the private key belongs to the certificate in ${keyIn.source})`)
}

function checkExtendedKeyUsage (leaf: X509Certificate, side: 'server' | 'client', item: PemItem): void {
  const usages = certificateFields(leaf).extendedKeyUsages
  // anyExtendedKeyUsage does not do: OpenSSL's peers refuse a certificate whose extended key usage lacks the side.
  if (usages === null || usages.includes(TLS_EXTENDED_KEY_USAGE[side])) return
  const wanted = side === 'server' ? 'serverAuth' : 'clientAuth'
  throw itemError('ERR_MTLS_MATERIAL_EKU_UNSUITABLE', item, `the certificate's extended key usage lacks ${wanted}, so it cannot serve as a TLS ${side}`)
}
