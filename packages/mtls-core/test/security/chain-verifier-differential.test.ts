// The forwarded-certificate verifier against OpenSSL, case by case: a named table of crafted chains and CRLs, each
// judged by ChainVerifier, by `openssl verify -x509_strict -purpose sslclient` (-crl_check_all with CRLs) and by a
// real Node TLS handshake. Each row names the error OpenSSL gives (`openssl verify`'s first, by OpenSSL's name), which
// proves the row is the case it claims, and the verifier's code. The verifier must never accept what either OpenSSL
// judge refuses; where it refuses what OpenSSL accepts, the row says why. Together the rows meet every verify error
// OpenSSL 3.0 can give a TLS client's chain with these flags (SECURITY.md lists them, and which cannot occur), and
// the attacks of issue 24: weak algorithms and keys, extensions OpenSSL evaluates, encodings, CRL shards.
import t from 'tap'
import { hangLimit } from 'mtls-test-support'
import { createTestPki } from 'mtls-pki'
import {
  CLIENT_AUTH, KU, KeyPool, SERVER_AUTH, algorithms, authorityFromPem, caExtensions, certificateParts, clientExtensions, extensions as ext, forgeCertificate,
  forgeCrl, fromPem, issueCa, issueLeaf, keyIdentifier, name, nullValue, oid, relabelledSpki, rsaPss, selfSignedCa, sequence, set, timeText,
  tlv, type Authority, type CaOptions, type CrlOptions, type Extension, type ForgeKey, type KeyKind, type LeafOptions
} from 'mtls-test-support/certificate-forge'
import { toPeerIdentity } from '../../src/index.js'
import { disagreement, judge, type DifferentialCase, type DifferentialGroup, type Verdicts } from './differential-judges.js'

t.setTimeout(hangLimit(300_000))

const pki = await createTestPki()
const root = authorityFromPem(pki.root.certificate, pki.root.key)
const intermediate = authorityFromPem(pki.intermediate.certificate, pki.intermediate.key)
const server = { cert: pki.server.chain, key: pki.server.key }
const pool = new KeyPool({ p256: 4, rsa2048: 2 })
const HOUR = 3_600_000
const DAY = 24 * HOUR
const now = Date.now()

let serial = 0
/** A CA under `issuer` (the test root by default) with a name of its own, so that rows never share one. */
function ca (label: string, options: Partial<CaOptions> & { keyKind?: KeyKind, issuer?: Authority } = {}): Authority {
  const key = options.key ?? pool.take(options.keyKind ?? 'p256')
  const issuer = options.issuer ?? root
  return issueCa(issuer, { subject: name(['CN', `differential ${label} ${++serial}`]), ...options, key })
}

interface Built {
  leaf: Buffer
  key: ForgeKey
  /** Presented by the client after its leaf. Default: the test intermediate. */
  intermediates?: Buffer[]
  /** Default: the test root. */
  roots?: Buffer[]
  crls?: Buffer[]
}

function leafUnder (issuer: Authority, options: Partial<LeafOptions> & { keyKind?: KeyKind } = {}): Built {
  const key = options.key ?? pool.take(options.keyKind ?? 'p256')
  return { leaf: issueLeaf(issuer, { ...options, key }), key, intermediates: issuer === intermediate ? [intermediate.certificate] : [issuer.certificate] }
}

/** A conforming leaf under the test intermediate, with `options` changed. */
const leaf = (options: Partial<LeafOptions> & { keyKind?: KeyKind } = {}): Built => leafUnder(intermediate, options)
/** The default client extensions of `key` under `issuer`, less those of `without` OIDs, plus `extra`. */
const clientExtensionsWith = (key: ForgeKey, issuer: Authority, without: string[], ...extra: Extension[]): Extension[] =>
  [...clientExtensions(key, issuer).filter(extension => !without.includes(extension.oid)), ...extra]
/** A leaf whose extensions are the defaults less `without`, plus `extra`. */
function leafWith (without: string[], ...extra: Extension[]): Built {
  const key = pool.take('p256')
  return leaf({ key, extensions: clientExtensionsWith(key, intermediate, without, ...extra) })
}
/** A leaf under a fresh intermediate whose extensions are the CA defaults less `without`, plus `extra`. */
function underCaWith (label: string, without: string[], ...extra: Extension[]): Built {
  const key = pool.take('p256')
  const issuer = ca(label, { key, extensions: [...caExtensions(key, root).filter(extension => !without.includes(extension.oid)), ...extra] })
  return leafUnder(issuer)
}
/** A leaf with the given SAN (and `rawSan` names) under a fresh intermediate with the name constraints `constraints`. */
function constrained (label: string, constraints: Extension, san: Parameters<typeof ext.subjectAltName>[0], ...rawSan: Buffer[]): Built {
  const key = pool.take('p256')
  const issuer = ca(label, { key, extensions: [...caExtensions(key, root), constraints] })
  const leafKey = pool.take('p256')
  const names: Extension = rawSan.length === 0 ? ext.subjectAltName(san) : { oid: SAN, value: sequence(...rawSan) }
  return under(issuer, { key: leafKey, extensions: clientExtensionsWith(leafKey, issuer, [SAN], names) })
}
const rootCrl = (options: Partial<CrlOptions> = {}): Buffer => forgeCrl({ issuer: root, ...options })
const crlOf = (issuer: Authority, options: Partial<CrlOptions> = {}): Buffer => forgeCrl({ issuer, ...options })
/** `built` judged with a current root CRL and the given CRLs of its issuer. */
const withCrls = (built: Built, ...crls: Buffer[]): Built => ({ ...built, crls: [rootCrl(), ...crls] })
const serialOf = (der: Buffer): Buffer => certificateParts(der).serial

const BASIC_CONSTRAINTS = '2.5.29.19'
const KEY_USAGE = '2.5.29.15'
const EXT_KEY_USAGE = '2.5.29.37'
const SAN = '2.5.29.17'
const SKI = '2.5.29.14'
const AKI = '2.5.29.35'

const rsaIntermediate = ca('RSA intermediate', { keyKind: 'rsa2048' })
const under = (issuer: Authority, options: Partial<LeafOptions> = {}): Built => leafUnder(issuer, options)
const shard = (uri: string): Extension => ext.crlDistributionPoints([{ uris: [uri] }])
const scoped = (uri: string, extra: Partial<CrlOptions> = {}): Buffer => crlOf(intermediate, { ...extra, extraExtensions: [ext.issuingDistributionPoint({ uris: [uri] }), ...(extra.extraExtensions ?? [])] })

interface Row {
  readonly name: string
  /** `openssl verify`'s first error, by OpenSSL's name (NOT_LOADED: it cannot read the certificate), or null when it accepts. */
  readonly openssl: string | null
  /** The verifier's code, or null when it accepts. */
  readonly verifier: string | null
  /** Why the verifier refuses what OpenSSL accepts, when it does. */
  readonly stricter?: string
  readonly build: () => Built
}

const rows: Row[] = [
  // Conforming chains: every judge accepts them, so refusals below are about what each row changes.
  { name: 'a conforming P-256 client certificate', openssl: null, verifier: null, build: () => leaf() },
  { name: 'mtls-pki\'s own order-service certificate', openssl: null, verifier: null, build: () => ({ leaf: fromPem(pki.orderService.certificate)[0] as Buffer, key: keyOf(pki.orderService.key), intermediates: [intermediate.certificate] }) },
  { name: 'a P-384 client key', openssl: null, verifier: null, build: () => leaf({ keyKind: 'p384' }) },
  { name: 'a P-521 client key', openssl: null, verifier: null, build: () => leaf({ keyKind: 'p521' }) },
  { name: 'an Ed25519 client key', openssl: null, verifier: null, build: () => leaf({ keyKind: 'ed25519' }) },
  { name: 'an Ed448 client key', openssl: null, verifier: null, build: () => leaf({ keyKind: 'ed448' }) },
  { name: 'an RSA-2048 client key', openssl: null, verifier: null, build: () => leaf({ keyKind: 'rsa2048' }) },
  { name: 'signed with ECDSA and SHA-512', openssl: null, verifier: null, build: () => leaf({ algorithm: algorithms.ecdsaSha512 }) },
  { name: 'an RSA intermediate signing with PKCS#1 v1.5 and SHA-256', openssl: null, verifier: null, build: () => under(rsaIntermediate) },
  { name: 'an RSA intermediate signing with PKCS#1 v1.5 and SHA-512', openssl: null, verifier: null, build: () => under(rsaIntermediate, { algorithm: algorithms.rsaSha512 }) },
  { name: 'RSA-PSS with SHA-256, MGF1-SHA-256, salt 32', openssl: null, verifier: null, build: () => under(rsaIntermediate, { algorithm: rsaPss('sha256') }) },
  { name: 'RSA-PSS with SHA-512, MGF1-SHA-512, salt 64', openssl: null, verifier: null, build: () => under(rsaIntermediate, { algorithm: rsaPss('sha512') }) },
  { name: 'RSA-PSS with SHA-256 and the longest salt (OpenSSL\'s default)', openssl: null, verifier: null, build: () => under(rsaIntermediate, { algorithm: rsaPss('sha256', { saltLength: 222 }) }) },
  { name: 'RSA-PSS with an explicit trailer field of 1', openssl: null, verifier: null, build: () => under(rsaIntermediate, { algorithm: rsaPss('sha384', { trailerField: 1 }) }) },
  { name: 'an Ed25519 intermediate', openssl: null, verifier: null, build: () => under(ca('Ed25519', { keyKind: 'ed25519' })) },
  { name: 'a P-384 intermediate signing with ECDSA and SHA-384', openssl: null, verifier: null, build: () => under(ca('P-384', { keyKind: 'p384' })) },
  { name: 'two intermediates below the root', openssl: null, verifier: null, build: () => { const upper = ca('upper'); const lower = ca('lower', { issuer: upper }); return { ...under(lower), intermediates: [lower.certificate, upper.certificate] } } },
  { name: 'a certificate policy and an unknown non-critical extension', openssl: null, verifier: null, build: () => leafWith([], ext.certificatePolicies(['2.5.29.32.0']), ext.unknown(false)) },
  { name: 'an empty subject with a critical SAN', openssl: null, verifier: null, build: () => { const key = pool.take('p256'); return leaf({ key, subject: sequence(), extensions: clientExtensionsWith(key, intermediate, [SAN], ext.subjectAltName({ uris: ['spiffe://mycompany.com/production/empty-subject'] }, true)) }) } },
  { name: 'current CRLs of the root and the intermediate, not listing it', openssl: null, verifier: null, build: () => withCrls(leaf(), crlOf(intermediate)) },
  { name: 'mtls-pki\'s own CRLs', openssl: null, verifier: null, build: () => ({ ...leaf(), crls: pki.crl.map(pem => fromPem(pem)[0] as Buffer) }) },
  { name: 'CRL shards: its own shard current and silent, another shard newer', openssl: null, verifier: null, build: () => { const built = leafWith([], shard('http://crl.test/a.crl')); return withCrls(built, scoped('http://crl.test/a.crl', { thisUpdate: new Date(now - 2 * HOUR) }), scoped('http://crl.test/b.crl', { thisUpdate: new Date(now - HOUR) })) } },
  { name: 'a CRL of user certificates only, and the root\'s of CA certificates only', openssl: null, verifier: null, build: () => ({ ...leaf(), crls: [rootCrl({ extraExtensions: [ext.issuingDistributionPoint({ onlyCa: true })] }), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ onlyUser: true })] })] }) },
  { name: 'a CRL signed by an intermediate that only the client presented (a routine CRL refresh)', openssl: null, verifier: null, build: () => { const issuer = ca('presented only'); return withCrls(under(issuer), crlOf(issuer)) } },
  { name: 'an older, superseded CRL listing it beside the current one that does not', openssl: null, verifier: 'CERT_REVOKED', stricter: 'a listing in any CRL of its issuer counts, chosen or not', build: () => { const built = leaf(); return withCrls(built, crlOf(intermediate, { thisUpdate: new Date(now - 3 * HOUR), revoked: [{ serial: serialOf(built.leaf) }] }), crlOf(intermediate)) } },

  // Signature algorithms (issue 24: md5WithRSA under the OIW OID, RSA-PSS with SHA-1).
  { name: 'md5WithRSA under the OIW OID 1.3.14.3.2.3', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaMd5Oiw }) },
  { name: 'md5WithRSAEncryption', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaMd5 }) },
  { name: 'sha1WithRSAEncryption', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaSha1 }) },
  { name: 'sha1WithRSA under the OIW OID', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaSha1Oiw }) },
  { name: 'ecdsa-with-SHA1', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => leaf({ algorithm: algorithms.ecdsaSha1 }) },
  { name: 'an intermediate signed with ecdsa-with-SHA1', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(ca('SHA-1 signed', { algorithm: algorithms.ecdsaSha1 })) },
  { name: 'RSA-PSS with SHA-1', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: rsaPss('sha1') }) },
  { name: 'RSA-PSS with its default parameters (SHA-1)', openssl: 'CA_MD_TOO_WEAK', verifier: 'CA_MD_TOO_WEAK', build: () => under(rsaIntermediate, { algorithm: rsaPss('sha1', { noParameters: true }) }) },
  { name: 'RSA-PSS with SHA-256 and MGF1-SHA-1', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'the allowlist takes MGF1 of the signature\'s own hash only', build: () => under(rsaIntermediate, { algorithm: rsaPss('sha256', { mgf1: 'sha1' }) }) },
  { name: 'RSA-PSS with SHA-256 and no salt', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'the allowlist takes a salt at least as long as the hash', build: () => under(rsaIntermediate, { algorithm: rsaPss('sha256', { saltLength: 0 }) }) },
  { name: 'RSA-PSS with a trailer field of 2', openssl: 'CA_MD_TOO_WEAK', verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', build: () => under(rsaIntermediate, { algorithm: rsaPss('sha256', { trailerField: 2 }) }) },
  { name: 'sha224WithRSAEncryption', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'SHA-224 is off the allowlist', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaSha224 }) },
  { name: 'ecdsa-with-SHA224', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'SHA-224 is off the allowlist', build: () => leaf({ algorithm: algorithms.ecdsaSha224 }) },
  { name: 'ecdsa-with-SHA256 with a NULL parameter', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'RFC 5758 leaves the parameter out; identifiers are compared as whole encodings', build: () => leaf({ algorithm: algorithms.ecdsaSha256WithNull }) },
  { name: 'sha256WithRSAEncryption without its NULL parameter', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'RFC 4055 asks for NULL; identifiers are compared as whole encodings', build: () => under(rsaIntermediate, { algorithm: algorithms.rsaSha256NoNull }) },
  { name: 'an unknown signature algorithm', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', build: () => leaf({ algorithm: { ...algorithms.ecdsaSha256, identifier: sequence(oid('1.3.6.1.4.1.55555.9')) } }) },
  { name: 'an ECDSA signature algorithm under an RSA issuer', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'CERT_SIGNATURE_FAILURE', build: () => under(rsaIntermediate, { algorithm: { ...algorithms.rsaSha256, identifier: algorithms.ecdsaSha256.identifier } }) },
  { name: 'a DSA intermediate signing with dsa-with-SHA256', openssl: null, verifier: 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', stricter: 'DSA is off the allowlist', build: () => under(ca('DSA', { keyKind: 'dsa2048' })) },

  // Keys (issue 24: RSA-512 and RSA-768, secp112r1, explicit curve parameters).
  { name: 'an RSA-512 client key', openssl: 'EE_KEY_TOO_SMALL', verifier: 'EE_KEY_TOO_SMALL', build: () => leaf({ keyKind: 'rsa512' }) },
  { name: 'an RSA-768 client key', openssl: 'EE_KEY_TOO_SMALL', verifier: 'EE_KEY_TOO_SMALL', build: () => leaf({ keyKind: 'rsa768' }) },
  { name: 'an RSA-1024 client key', openssl: null, verifier: 'EE_KEY_TOO_SMALL', stricter: 'RSA keys of 2048 bits at least (OpenSSL\'s level 1 takes 1024)', build: () => leaf({ keyKind: 'rsa1024' }) },
  { name: 'an RSA-512 intermediate', openssl: 'CA_KEY_TOO_SMALL', verifier: 'CA_KEY_TOO_SMALL', build: () => under(ca('RSA-512', { keyKind: 'rsa512' })) },
  { name: 'an RSA-768 intermediate', openssl: 'CA_KEY_TOO_SMALL', verifier: 'CA_KEY_TOO_SMALL', build: () => under(ca('RSA-768', { keyKind: 'rsa768' })) },
  { name: 'an RSA-1024 intermediate', openssl: null, verifier: 'CA_KEY_TOO_SMALL', stricter: 'RSA keys of 2048 bits at least', build: () => under(ca('RSA-1024', { keyKind: 'rsa1024' })) },
  { name: 'an RSA-1024 root', openssl: null, verifier: 'CA_KEY_TOO_SMALL', stricter: 'the root\'s key too is held to the allowlist', build: () => { const weakRoot = selfSignedCa({ key: pool.take('rsa1024'), subject: name(['CN', 'differential RSA-1024 root']) }); return { ...under(weakRoot), intermediates: [], roots: [weakRoot.certificate] } } },
  { name: 'a secp112r1 client key', openssl: 'EE_KEY_TOO_SMALL', verifier: 'EE_KEY_TOO_SMALL', build: () => leaf({ keyKind: 'secp112r1' }) },
  { name: 'a secp112r1 intermediate', openssl: 'CA_KEY_TOO_SMALL', verifier: 'CA_KEY_TOO_SMALL', build: () => under(ca('secp112r1', { keyKind: 'secp112r1' })) },
  { name: 'a P-224 client key', openssl: null, verifier: 'ERR_MTLS_KEY_UNSUPPORTED', stricter: 'named P-256, P-384 and P-521 only', build: () => leaf({ keyKind: 'p224' }) },
  { name: 'a secp256k1 client key', openssl: null, verifier: 'ERR_MTLS_KEY_UNSUPPORTED', stricter: 'named P-256, P-384 and P-521 only', build: () => leaf({ keyKind: 'secp256k1' }) },
  { name: 'a brainpoolP256r1 intermediate', openssl: null, verifier: 'ERR_MTLS_KEY_UNSUPPORTED', stricter: 'named P-256, P-384 and P-521 only', build: () => under(ca('brainpool', { keyKind: 'brainpoolP256r1' })) },
  { name: 'a client key with explicit curve parameters', openssl: 'EC_KEY_EXPLICIT_PARAMS', verifier: 'EC_KEY_EXPLICIT_PARAMS', build: () => leaf({ keyKind: 'p256-explicit' }) },
  { name: 'an intermediate with explicit curve parameters', openssl: 'EC_KEY_EXPLICIT_PARAMS', verifier: 'EC_KEY_EXPLICIT_PARAMS', build: () => under(ca('explicit parameters', { keyKind: 'p256-explicit' })) },
  { name: 'a P-256 client key that is not on the curve', openssl: 'EE_KEY_TOO_SMALL', verifier: 'ERR_MTLS_KEY_UNSUPPORTED', build: () => { const key = pool.take('p256'); return leaf({ key, spki: offCurve(key.spki) }) } },
  { name: 'a P-256 client key as a compressed point', openssl: null, verifier: 'ERR_MTLS_KEY_UNSUPPORTED', stricter: 'EC points uncompressed only', build: () => { const key = pool.take('p256'); return leaf({ key, spki: compressed(key.spki) }) } },
  { name: 'an RSA client key labelled RSA-PSS', openssl: null, verifier: 'ERR_MTLS_KEY_UNSUPPORTED', stricter: 'RSA keys under rsaEncryption only', build: () => { const key = pool.take('rsa2048'); return leaf({ key, spki: relabelledSpki(key.spki, sequence(oid('1.2.840.113549.1.1.10'))) }) } },

  // Extensions OpenSSL evaluates (issue 24: nsCertType, proxyCertInfo, RFC 3779, the authority key identifier).
  { name: 'nsCertType without the SSL client bit', openssl: 'INVALID_PURPOSE', verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', build: () => leafWith([], ext.nsCertType(1 << 1)) },
  { name: 'nsCertType with the SSL client bit', openssl: null, verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', stricter: 'the verifier does not evaluate Netscape certificate types', build: () => leafWith([], ext.nsCertType(1 << 0)) },
  { name: 'proxyCertInfo', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'PROXY_CERTIFICATES_NOT_ALLOWED', build: () => leafWith([], ext.proxyCertInfo()) },
  { name: 'RFC 3779 IP address blocks not within the issuer\'s', openssl: 'UNNESTED_RESOURCE', verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', build: () => leafWith([], ext.ipAddrBlocks([[[10, 0, 0, 0], 8]])) },
  { name: 'RFC 3779 AS identifiers not within the issuer\'s', openssl: 'UNNESTED_RESOURCE', verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', build: () => leafWith([], ext.autonomousSysIds(64496, 64511)) },
  { name: 'policy constraints on the intermediate', openssl: null, verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', stricter: 'the verifier does not evaluate policies', build: () => underCaWith('policy constraints', [], ext.policyConstraints(0)) },
  { name: 'policy mappings on the intermediate', openssl: null, verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', stricter: 'the verifier does not evaluate policies', build: () => underCaWith('policy mappings', [], ext.policyMappings('1.3.6.1.4.1.55555.1', '1.3.6.1.4.1.55555.2')) },
  { name: 'inhibitAnyPolicy on the intermediate', openssl: null, verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', stricter: 'the verifier does not evaluate policies', build: () => underCaWith('inhibit any policy', [], ext.inhibitAnyPolicy(0)) },
  { name: 'name constraints the leaf is outside of', openssl: 'PERMITTED_VIOLATION', verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', build: () => constrained('permitted', ext.nameConstraints(['example.org']), { dnsNames: ['a.example.com'] }) },
  { name: 'name constraints excluding the leaf', openssl: 'EXCLUDED_VIOLATION', verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', build: () => constrained('excluded', ext.nameConstraints(['example.org'], { excluded: true }), { dnsNames: ['a.example.org'] }) },
  { name: 'name constraints with a minimum', openssl: 'SUBTREE_MINMAX', verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', build: () => constrained('subtree minimum', ext.nameConstraints(['example.org'], { minimum: 1 }), { dnsNames: ['a.example.org'] }) },
  { name: 'name constraints of a kind OpenSSL does not match (registeredID)', openssl: 'UNSUPPORTED_CONSTRAINT_TYPE', verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', build: () => constrained('registeredID', { oid: '2.5.29.30', critical: true, value: sequence(tlv(0xa0, sequence(tlv(0x88, oid('1.3.6.1.4.1.55555.3').subarray(2))))) }, {}, tlv(0x88, oid('1.3.6.1.4.1.55555.4').subarray(2))) },
  { name: 'e-mail name constraints and an e-mail SAN without @', openssl: 'UNSUPPORTED_NAME_SYNTAX', verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', build: () => constrained('e-mail', { oid: '2.5.29.30', critical: true, value: sequence(tlv(0xa0, sequence(tlv(0x81, Buffer.from('example.org'))))) }, { emails: ['no-at-sign'] }) },
  { name: 'name constraints the leaf is within', openssl: null, verifier: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', stricter: 'the verifier does not evaluate name constraints', build: () => constrained('within', ext.nameConstraints(['example.org']), { dnsNames: ['a.example.org'] }) },
  { name: 'an authority key identifier that is not the issuer\'s', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'AKID_SKID_MISMATCH', build: () => leafWith([AKI], ext.authorityKeyIdentifier({ keyIdentifier: Buffer.alloc(20, 7) })) },
  { name: 'an authority key identifier naming another serial', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'AKID_ISSUER_SERIAL_MISMATCH', build: () => leafWith([AKI], ext.authorityKeyIdentifier({ keyIdentifier: intermediate.keyIdentifier as Buffer, issuer: root.name, serial: Buffer.from([5]) })) },
  { name: 'a critical authority key identifier', openssl: 'UNHANDLED_CRITICAL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_EXTENSION', build: () => leafWith([AKI], ext.authorityKeyIdentifier({ keyIdentifier: intermediate.keyIdentifier as Buffer }, true)) },
  { name: 'a critical subject key identifier', openssl: 'UNHANDLED_CRITICAL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_EXTENSION', build: () => leafWith([SKI], ext.subjectKeyIdentifier(Buffer.alloc(20, 1), true)) },
  { name: 'an unknown critical extension', openssl: 'UNHANDLED_CRITICAL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_EXTENSION', build: () => leafWith([], ext.unknown(true)) },
  { name: 'two basic constraints extensions (CA:TRUE, then CA:FALSE)', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => { const key = pool.take('p256'); return leaf({ key, extensions: [ext.basicConstraints(true), ...clientExtensions(key, intermediate)] }) } },
  { name: 'no authority key identifier', openssl: 'MISSING_AUTHORITY_KEY_IDENTIFIER', verifier: 'MISSING_AUTHORITY_KEY_IDENTIFIER', build: () => leafWith([AKI]) },
  { name: 'an intermediate without a subject key identifier', openssl: 'MISSING_SUBJECT_KEY_IDENTIFIER', verifier: 'MISSING_SUBJECT_KEY_IDENTIFIER', build: () => { const key = pool.take('p256'); const issuer = ca('no SKI', { key, extensions: caExtensions(key, root).filter(e => e.oid !== SKI) }); const leafKey = pool.take('p256'); return under(issuer, { key: leafKey, extensions: clientExtensionsWith(leafKey, issuer, [], ext.authorityKeyIdentifier({ keyIdentifier: keyIdentifier(key.spki) })) }) } },
  { name: 'an intermediate whose key is not on its curve', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => { const key = pool.take('p256'); return under(ca('off the curve', { key, extensions: caExtensions(key, root), spki: offCurve(key.spki) })) } },
  { name: 'a key usage extension that does not decode', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leafWith([KEY_USAGE], { oid: KEY_USAGE, critical: true, value: Buffer.from([0x03, 0x02, 0x09, 0x80]) }) },
  { name: 'an intermediate whose basic constraints are not critical', openssl: 'CA_BCONS_NOT_CRITICAL', verifier: 'CA_BCONS_NOT_CRITICAL', build: () => underCaWith('basic constraints not critical', [BASIC_CONSTRAINTS], ext.basicConstraints(true, { critical: false })) },
  { name: 'an intermediate without key usage', openssl: 'CA_CERT_MISSING_KEY_USAGE', verifier: 'CA_CERT_MISSING_KEY_USAGE', build: () => underCaWith('no key usage', [KEY_USAGE]) },
  { name: 'an intermediate with CA:FALSE', openssl: 'INVALID_CA', verifier: 'INVALID_CA', build: () => underCaWith('CA false', [BASIC_CONSTRAINTS], ext.basicConstraints(false)) },
  { name: 'an intermediate without keyCertSign', openssl: 'INVALID_CA', verifier: 'INVALID_CA', build: () => underCaWith('no keyCertSign', [KEY_USAGE], ext.keyUsage(KU.cRLSign | KU.digitalSignature)) },
  { name: 'an intermediate for serverAuth only', openssl: 'INVALID_PURPOSE', verifier: 'INVALID_PURPOSE', build: () => underCaWith('serverAuth', [], ext.extendedKeyUsage([SERVER_AUTH])) },
  { name: 'an intermediate for anyExtendedKeyUsage only', openssl: 'INVALID_PURPOSE', verifier: 'INVALID_PURPOSE', build: () => underCaWith('any EKU', [], ext.extendedKeyUsage(['2.5.29.37.0'])) },
  { name: 'an intermediate of path length 0 above another', openssl: 'PATH_LENGTH_EXCEEDED', verifier: 'PATH_LENGTH_EXCEEDED', build: () => { const upper = ca('path length 0', { pathLength: 0 }); const lower = ca('below path length 0', { issuer: upper }); return { ...under(lower), intermediates: [lower.certificate, upper.certificate] } } },
  { name: 'a leaf with a path length', openssl: 'PATHLEN_INVALID_FOR_NON_CA', verifier: 'PATHLEN_INVALID_FOR_NON_CA', build: () => leafWith([BASIC_CONSTRAINTS], ext.basicConstraints(false, { pathLength: 0 })) },
  { name: 'an intermediate with a path length and no keyCertSign', openssl: 'INVALID_CA', verifier: 'INVALID_CA', build: () => underCaWith('path length without keyCertSign', [BASIC_CONSTRAINTS, KEY_USAGE], ext.basicConstraints(true, { pathLength: 1 }), ext.keyUsage(KU.cRLSign)) },
  { name: 'a leaf with keyCertSign', openssl: 'KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA', verifier: 'KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA', build: () => leafWith([KEY_USAGE], ext.keyUsage(KU.digitalSignature | KU.keyCertSign)) },
  { name: 'a leaf whose key usage allows neither signing nor key agreement', openssl: 'INVALID_PURPOSE', verifier: 'INVALID_PURPOSE', build: () => leafWith([KEY_USAGE], ext.keyUsage(KU.keyEncipherment)) },
  { name: 'a leaf for serverAuth only', openssl: 'INVALID_PURPOSE', verifier: 'INVALID_PURPOSE', build: () => leafWith([EXT_KEY_USAGE], ext.extendedKeyUsage([SERVER_AUTH])) },
  { name: 'a leaf for anyExtendedKeyUsage only', openssl: 'INVALID_PURPOSE', verifier: 'INVALID_PURPOSE', build: () => leafWith([EXT_KEY_USAGE], ext.extendedKeyUsage(['2.5.29.37.0'])) },
  { name: 'a leaf with both TLS usages', openssl: null, verifier: null, build: () => leafWith([EXT_KEY_USAGE], ext.extendedKeyUsage([SERVER_AUTH, CLIENT_AUTH])) },
  { name: 'an empty subject alternative name', openssl: 'EMPTY_SUBJECT_ALT_NAME', verifier: 'EMPTY_SUBJECT_ALT_NAME', build: () => leafWith([SAN], ext.subjectAltName({})) },
  { name: 'an empty subject and a SAN that is not critical', openssl: 'EMPTY_SUBJECT_SAN_NOT_CRITICAL', verifier: 'EMPTY_SUBJECT_SAN_NOT_CRITICAL', build: () => leaf({ subject: sequence() }) },
  { name: 'an empty subject and no SAN', openssl: 'SUBJECT_NAME_EMPTY', verifier: 'SUBJECT_NAME_EMPTY', build: () => { const key = pool.take('p256'); return leaf({ key, subject: sequence(), extensions: clientExtensionsWith(key, intermediate, [SAN]) }) } },
  { name: 'a root and its certificates with an empty issuer name', openssl: 'ISSUER_NAME_EMPTY', verifier: 'ISSUER_NAME_EMPTY', build: () => { const nameless = selfSignedCa({ key: pool.take('p256'), subject: sequence() }); return { ...under(nameless), intermediates: [], roots: [nameless.certificate] } } },
  { name: 'a version 1 leaf without extensions', openssl: null, verifier: 'EXTENSIONS_REQUIRE_VERSION_3', stricter: 'version 3 only: without an authority key identifier the issuer is not named by its key', build: () => leaf({ version: null, extensions: [] }) },
  { name: 'a version 1 leaf with extensions', openssl: 'EXTENSIONS_REQUIRE_VERSION_3', verifier: 'EXTENSIONS_REQUIRE_VERSION_3', build: () => leaf({ version: null }) },
  { name: 'a CA:TRUE leaf whose basic constraints are not critical', openssl: 'CA_BCONS_NOT_CRITICAL', verifier: 'CA_BCONS_NOT_CRITICAL', build: () => leafWith([BASIC_CONSTRAINTS, KEY_USAGE], ext.basicConstraints(true, { critical: false }), ext.keyUsage(KU.digitalSignature | KU.keyCertSign)) },

  // Encodings (issue 24: algorithm identifiers that disagree, unused bits, bytes after the signature).
  { name: 'the outer signature algorithm differs from the signed one', openssl: 'SIGNATURE_ALGORITHM_INCONSISTENCY', verifier: 'SIGNATURE_ALGORITHM_INCONSISTENCY', build: () => leaf({ tamper: { outerAlgorithm: algorithms.ecdsaSha384.identifier } }) },
  { name: 'the signed algorithm identifier has a NULL the outer one lacks', openssl: 'SIGNATURE_ALGORITHM_INCONSISTENCY', verifier: 'SIGNATURE_ALGORITHM_INCONSISTENCY', build: () => leaf({ tamper: { innerAlgorithm: algorithms.ecdsaSha256WithNull.identifier } }) },
  { name: 'a signature BIT STRING with an unused bit', openssl: 'CERT_SIGNATURE_FAILURE', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ tamper: { unusedBits: 1 } }) },
  { name: 'bytes after the signature inside the certificate', openssl: 'NOT_LOADED', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ tamper: { afterSignature: nullValue() } }) },
  { name: 'bytes after the certificate', openssl: null, verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', stricter: 'one certificate, nothing after it (the handshake refuses it too: Node cannot load it)', build: () => leaf({ tamper: { afterCertificate: nullValue() } }) },
  { name: 'a BER length on the outer SEQUENCE', openssl: null, verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', stricter: 'strict DER: another encoding of a certificate is another fingerprint', build: () => leaf({ tamper: { longOuterLength: true } }) },
  { name: 'a serial number with a needless leading zero', openssl: 'NOT_LOADED', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ serialRaw: tlv(0x02, Buffer.from([0x00, 0x12, 0x34])) }) },
  { name: 'a subject name whose UTF8String is not UTF-8', openssl: 'NOT_LOADED', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ subject: sequence(set(sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from([0xc3, 0x28]))))) }) },
  { name: 'a corrupted signature', openssl: 'CERT_SIGNATURE_FAILURE', verifier: 'CERT_SIGNATURE_FAILURE', build: () => leaf({ tamper: { corruptSignature: true } }) },
  { name: 'signed by another key under the intermediate\'s name and key identifier', openssl: 'CERT_SIGNATURE_FAILURE', verifier: 'CERT_SIGNATURE_FAILURE', build: () => { const key = pool.take('p256'); return { key, leaf: issueLeaf({ ...intermediate, key: pool.take('p256') }, { key }), intermediates: [intermediate.certificate] } } },
  { name: 'a notAfter without seconds', openssl: 'ERROR_IN_CERT_NOT_AFTER_FIELD', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ notAfterRaw: timeText('3001010000Z') }) },
  { name: 'a notBefore of February 30', openssl: 'ERROR_IN_CERT_NOT_BEFORE_FIELD', verifier: 'ERR_MTLS_CERTIFICATE_MALFORMED', build: () => leaf({ notBeforeRaw: timeText('250230000000Z') }) },

  // Chains and validity.
  { name: 'an expired leaf', openssl: 'CERT_HAS_EXPIRED', verifier: 'CERT_HAS_EXPIRED', build: () => leaf({ notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) }) },
  { name: 'a leaf not yet valid', openssl: 'CERT_NOT_YET_VALID', verifier: 'CERT_NOT_YET_VALID', build: () => leaf({ notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) }) },
  { name: 'an expired intermediate', openssl: 'CERT_HAS_EXPIRED', verifier: 'CERT_HAS_EXPIRED', build: () => under(ca('expired', { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) })) },
  { name: 'an expired root', openssl: 'CERT_HAS_EXPIRED', verifier: 'CERT_HAS_EXPIRED', build: () => { const old = selfSignedCa({ key: pool.take('p256'), subject: name(['CN', 'differential expired root']), notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) }); return { ...under(old), intermediates: [], roots: [old.certificate] } } },
  { name: 'a self-signed leaf', openssl: 'DEPTH_ZERO_SELF_SIGNED_CERT', verifier: 'DEPTH_ZERO_SELF_SIGNED_CERT', build: () => { const key = pool.take('p256'); const self = { name: name(['CN', 'differential self-signed']), key, keyIdentifier: keyIdentifier(key.spki), serial: Buffer.from([1]) }; return { key, leaf: forgeCertificate({ subject: self.name, key, issuer: self, extensions: clientExtensions(key, self) }), intermediates: [] } } },
  { name: 'a chain to a self-signed root the client brought', openssl: 'SELF_SIGNED_CERT_IN_CHAIN', verifier: 'SELF_SIGNED_CERT_IN_CHAIN', build: () => { const own = selfSignedCa({ key: pool.take('p256'), subject: name(['CN', 'differential own root']) }); return { ...under(own), intermediates: [own.certificate] } } },
  { name: 'a leaf of another CA', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', build: () => ({ leaf: fromPem(pki.otherCa.certificate)[0] as Buffer, key: keyOf(pki.otherCa.key), intermediates: [] }) },
  { name: 'the intermediate not presented', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', build: () => ({ ...leafUnder(ca('not presented')), intermediates: [] }) },
  { name: 'a trusted intermediate without its root', openssl: 'UNABLE_TO_GET_ISSUER_CERT', verifier: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', build: () => ({ ...leaf(), intermediates: [], roots: [intermediate.certificate] }) },
  { name: 'the leaf itself as the only trusted certificate', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', build: () => { const built = leaf(); return { ...built, intermediates: [], roots: [built.leaf] } } },
  { name: 'nine intermediates', openssl: null, verifier: 'CERT_CHAIN_TOO_LONG', stricter: 'chains of eight certificates at most', build: () => { let issuer = root; const chain: Buffer[] = []; for (let i = 0; i < 9; i++) { issuer = ca(`deep ${i}`, { issuer }); chain.unshift(issuer.certificate) } return { ...under(issuer), intermediates: chain } } },
  { name: 'two intermediates that issued each other', openssl: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', verifier: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', build: () => loop() },

  // CRLs (issue 24: a shard hides nothing, unknown critical extensions, cRLSign).
  { name: 'revoked in mtls-pki\'s CRL', openssl: 'CERT_REVOKED', verifier: 'CERT_REVOKED', build: () => ({ leaf: fromPem(pki.revoked.certificate)[0] as Buffer, key: keyOf(pki.revoked.key), intermediates: [intermediate.certificate], crls: pki.crl.map(pem => fromPem(pem)[0] as Buffer) }) },
  { name: 'revoked in its own shard while another shard is newer', openssl: 'CERT_REVOKED', verifier: 'CERT_REVOKED', build: () => { const built = leafWith([], shard('http://crl.test/a.crl')); return withCrls(built, scoped('http://crl.test/a.crl', { thisUpdate: new Date(now - 2 * HOUR), revoked: [{ serial: serialOf(built.leaf) }] }), scoped('http://crl.test/b.crl', { thisUpdate: new Date(now - HOUR) })) } },
  { name: 'a CRL with an unknown critical extension', openssl: 'UNHANDLED_CRITICAL_CRL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_CRL_EXTENSION', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.unknown(true)] })) },
  { name: 'a CRL entry with an unknown critical extension', openssl: 'UNHANDLED_CRITICAL_CRL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_CRL_EXTENSION', build: () => withCrls(leaf(), crlOf(intermediate, { revoked: [{ serial: Buffer.from([0x77]), extensions: [ext.unknown(true)] }] })) },
  { name: 'a critical CRL number', openssl: 'UNHANDLED_CRITICAL_CRL_EXTENSION', verifier: 'UNHANDLED_CRITICAL_CRL_EXTENSION', build: () => withCrls(leaf(), crlOf(intermediate, { extensions: [ext.crlNumber(7, true), ext.authorityKeyIdentifier({ keyIdentifier: intermediate.keyIdentifier as Buffer })] })) },
  { name: 'a CRL signed by a CA whose key usage lacks cRLSign', openssl: 'KEYUSAGE_NO_CRL_SIGN', verifier: 'KEYUSAGE_NO_CRL_SIGN', build: () => { const key = pool.take('p256'); const issuer = ca('no cRLSign', { key, extensions: [...caExtensions(key, root).filter(e => e.oid !== KEY_USAGE), ext.keyUsage(KU.keyCertSign)] }); return withCrls(under(issuer), crlOf(issuer)) } },
  { name: 'an expired CRL', openssl: 'CRL_HAS_EXPIRED', verifier: 'CRL_HAS_EXPIRED', build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now - 10 * DAY), nextUpdate: new Date(now - DAY) })) },
  { name: 'a CRL not yet valid', openssl: 'CRL_NOT_YET_VALID', verifier: 'CRL_NOT_YET_VALID', build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now + DAY), nextUpdate: new Date(now + 10 * DAY) })) },
  { name: 'a CRL with a corrupted signature', openssl: 'CRL_SIGNATURE_FAILURE', verifier: 'CRL_SIGNATURE_FAILURE', build: () => withCrls(leaf(), crlOf(intermediate, { tamper: { corruptSignature: true } })) },
  { name: 'a newer CRL under the issuer\'s name signed by another key', openssl: 'CRL_SIGNATURE_FAILURE', verifier: 'CRL_SIGNATURE_FAILURE', build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now - 2 * HOUR) }), crlOf({ ...intermediate, keyIdentifier: null }, { signingKey: pool.take('p256') })) },
  { name: 'only a CRL under the issuer\'s name signed by another key', openssl: 'CRL_SIGNATURE_FAILURE', verifier: 'CRL_SIGNATURE_FAILURE', build: () => withCrls(leaf(), crlOf({ ...intermediate, keyIdentifier: null }, { signingKey: pool.take('p256') })) },
  { name: 'a CRL whose key identifier names another key, beside the genuine one', openssl: null, verifier: null, build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now - 2 * HOUR) }), crlOf({ ...intermediate, keyIdentifier: Buffer.alloc(20, 9) }, { signingKey: pool.take('p256'), revoked: [] })) },
  { name: 'a CRL signed with SHA-1', openssl: null, verifier: 'CRL_SIGNATURE_FAILURE', stricter: 'CRLs too are held to the allowlist of signature algorithms', build: () => withCrls(leaf(), crlOf(intermediate, { algorithm: algorithms.ecdsaSha1 })) },
  { name: 'a CRL whose outer signature algorithm differs from the signed one', openssl: null, verifier: 'CRL_SIGNATURE_FAILURE', stricter: 'a CRL, too, names one signature algorithm inside and out', build: () => withCrls(leaf(), crlOf(intermediate, { tamper: { innerAlgorithm: algorithms.ecdsaSha384.identifier } })) },
  { name: 'no CRL of the intermediate', openssl: 'UNABLE_TO_GET_CRL', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf()) },
  { name: 'no CRL of the root', openssl: 'UNABLE_TO_GET_CRL', verifier: 'UNABLE_TO_GET_CRL', build: () => ({ ...leaf(), crls: [crlOf(intermediate)] }) },
  { name: 'its CRL distribution point outside the only CRL\'s scope', openssl: 'DIFFERENT_CRL_SCOPE', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leafWith([], shard('http://crl.test/a.crl')), scoped('http://crl.test/b.crl')) },
  { name: 'no CRL distribution point, and a CRL scoped to one', openssl: 'DIFFERENT_CRL_SCOPE', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), scoped('http://crl.test/a.crl')) },
  { name: 'a CRL of CA certificates only for a leaf', openssl: 'DIFFERENT_CRL_SCOPE', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ onlyCa: true })] })) },
  { name: 'a root CRL of user certificates only', openssl: 'DIFFERENT_CRL_SCOPE', verifier: 'UNABLE_TO_GET_CRL', build: () => ({ ...leaf(), crls: [rootCrl({ extraExtensions: [ext.issuingDistributionPoint({ onlyUser: true })] }), crlOf(intermediate)] }) },
  { name: 'a CRL of attribute certificates only', openssl: 'DIFFERENT_CRL_SCOPE', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ onlyAttributes: true })] })) },
  { name: 'a self-issued intermediate (the root\'s name, another key), its leaf\'s CRL signed by the root', openssl: null, verifier: null, build: () => selfIssued() },
  { name: 'the root revoked in its own CRL', openssl: 'CERT_REVOKED', verifier: 'CERT_REVOKED', build: () => ({ ...leaf(), crls: [rootCrl({ revoked: [{ serial: root.serial }] }), crlOf(intermediate)] }) },
  { name: 'the intermediate revoked in the root\'s CRL', openssl: 'CERT_REVOKED', verifier: 'CERT_REVOKED', build: () => ({ ...leaf(), crls: [rootCrl({ revoked: [{ serial: intermediate.serial }] }), crlOf(intermediate)] }) },
  { name: 'only a CRL scoped by reasons', openssl: 'UNABLE_TO_GET_CRL', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ onlySomeReasons: 1 << 1 })] })) },
  { name: 'only an indirect CRL', openssl: 'UNABLE_TO_GET_CRL', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ indirect: true })] })) },
  { name: 'only a delta CRL', openssl: null, verifier: 'UNABLE_TO_GET_CRL', stricter: 'OpenSSL 3.0 takes a delta CRL for a complete one; later versions, and the verifier, do not', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.deltaCrlIndicator(1)] })) },
  { name: 'a newer delta CRL with a corrupted signature beside the complete one', openssl: 'CRL_SIGNATURE_FAILURE', verifier: 'CRL_SIGNATURE_FAILURE', build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now - 2 * HOUR) }), crlOf(intermediate, { extraExtensions: [ext.deltaCrlIndicator(1)], tamper: { corruptSignature: true } })) },
  { name: 'a newer delta CRL beside the complete one, neither listing it', openssl: null, verifier: null, build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdate: new Date(now - 2 * HOUR) }), crlOf(intermediate, { extraExtensions: [ext.deltaCrlIndicator(1)] })) },
  { name: 'a CRL whose thisUpdate has no seconds', openssl: 'ERROR_IN_CRL_LAST_UPDATE_FIELD', verifier: 'ERR_MTLS_MATERIAL_CRL_MALFORMED', build: () => withCrls(leaf(), crlOf(intermediate, { thisUpdateRaw: timeText('2501010000Z') })) },
  { name: 'a CRL whose nextUpdate is February 30', openssl: 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', verifier: 'ERR_MTLS_MATERIAL_CRL_MALFORMED', build: () => withCrls(leaf(), crlOf(intermediate, { nextUpdateRaw: timeText('300230000000Z') })) },
  { name: 'only a CRL whose issuing distribution point is invalid', openssl: 'UNABLE_TO_GET_CRL', verifier: 'UNABLE_TO_GET_CRL', build: () => withCrls(leaf(), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ onlyUser: true, onlyCa: true })] })) },
  { name: 'a CRL distribution point with reasons', openssl: 'UNABLE_TO_GET_CRL', verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', build: () => withCrls(leafWith([], ext.crlDistributionPoints([{ uris: ['http://crl.test/a.crl'], reasons: 1 << 1 }])), crlOf(intermediate)) },
  { name: 'a CRL distribution point relative to the CRL issuer', openssl: null, verifier: 'ERR_MTLS_EXTENSION_UNSUPPORTED', stricter: 'relative distribution point names are not evaluated', build: () => withCrls(leafWith([], ext.crlDistributionPoints([{ relativeCommonName: 'shard a' }])), crlOf(intermediate, { extraExtensions: [ext.issuingDistributionPoint({ relativeCommonName: 'shard a' })] })) }
]

function keyOf (pem: string): ForgeKey {
  return authorityFromPem(pki.intermediate.certificate, pem).key
}

// A P-256 SubjectPublicKeyInfo whose point's last byte is changed: off the curve.
function offCurve (spki: Buffer): Buffer {
  const changed = Buffer.from(spki)
  changed[changed.length - 1] = (changed[changed.length - 1] as number) ^ 0x01
  return changed
}

// The same P-256 key as a compressed point (02 or 03, then x).
function compressed (spki: Buffer): Buffer {
  const point = spki.subarray(spki.length - 65)
  const prefix = ((point[64] as number) & 1) === 0 ? 0x02 : 0x03
  return sequence(sequence(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), tlv(0x03, Buffer.from([0, prefix]), point.subarray(1, 33)))
}

// An intermediate under the root's own name with a key of its own (as a CA rolling its key over issues), and a leaf
// below it. Its CRLs name the root: the leaf's is found on the path (the root, by its key identifier), signed by the root.
function selfIssued (): Built {
  const key = pool.take('p256')
  const rolled = issueCa(root, { key, subject: root.name, extensions: caExtensions(key, root) })
  const built = under(rolled)
  return { ...built, crls: [rootCrl()] }
}

// Two intermediates, each issued by the other, neither by a trusted CA.
function loop (): Built {
  const aKey = pool.take('p256')
  const bKey = pool.take('p256')
  const a = { name: name(['CN', 'differential loop A']), key: aKey, keyIdentifier: keyIdentifier(aKey.spki), serial: Buffer.from([0x0a]) }
  const b = { name: name(['CN', 'differential loop B']), key: bKey, keyIdentifier: keyIdentifier(bKey.spki), serial: Buffer.from([0x0b]) }
  const aCert = forgeCertificate({ subject: a.name, key: aKey, issuer: b, serial: a.serial, extensions: caExtensions(aKey, b) })
  const bCert = forgeCertificate({ subject: b.name, key: bKey, issuer: a, serial: b.serial, extensions: caExtensions(bKey, a) })
  const leafKey = pool.take('p256')
  return { key: leafKey, leaf: issueLeaf(a, { key: leafKey }), intermediates: [aCert, bCert] }
}

t.test(`the named table: ${rows.length} crafted chains and CRLs, each judged by the verifier, openssl verify and a TLS handshake`, async t => {
  const groups: DifferentialGroup[] = rows.map(row => {
    const built = row.build()
    const testCase: DifferentialCase = { name: row.name, leaf: built.leaf, key: built.key, intermediates: built.intermediates ?? [intermediate.certificate] }
    return { roots: built.roots ?? [root.certificate], crls: built.crls ?? [], cases: [testCase] }
  })
  const verdicts = (await judge(groups, { server, groupConcurrency: 6 })).map(list => list[0] as Verdicts)
  if (process.env.DIFFERENTIAL_DISCOVER === '1') {
    rows.forEach((row, index) => t.comment(`${row.name} | ${JSON.stringify(verdicts[index])}`))
  }
  rows.forEach((row, index) => {
    const verdict = verdicts[index] as Verdicts
    const group = groups[index] as DifferentialGroup
    t.test(row.name, async t => {
      const problem = disagreement(group, group.cases[0] as DifferentialCase, verdict)
      t.equal(problem, null, 'the verifier accepts nothing an OpenSSL judge refuses')
      t.equal(verdict.openssl, row.openssl, `openssl verify: ${String(row.openssl)}`)
      t.equal(verdict.verifier, row.verifier, `the verifier: ${String(row.verifier)}`)
      if (row.openssl === null && row.verifier !== null) t.ok(row.stricter, 'a row where the verifier is stricter says why')
      if (row.verifier === null) t.equal(verdict.handshake, null, 'a real handshake accepts it too')
    })
  })
})

t.test('a certificate with two basic constraints extensions is no peer identity either', async t => {
  // CA:TRUE then CA:FALSE: a reader that kept the last would take a CA for a leaf.
  const key = pool.take('p256')
  const twice = issueLeaf(intermediate, { key, extensions: [ext.basicConstraints(true), ...clientExtensions(key, intermediate)] })
  t.throws(() => toPeerIdentity(twice), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' })
})
