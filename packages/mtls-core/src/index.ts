export { ChainVerifier, type ChainVerifierOptions, type VerifyOptions } from './chain-verifier.js'
export {
  CertificateError,
  MaterialError,
  MatcherError,
  MtlsCoreError,
  SpiffeIdError,
  SvidError,
  VerificationError,
  XfccError,
  type CertificateErrorCode,
  type MaterialErrorCode,
  type MatcherErrorCode,
  type OpenSslVerifyCode,
  type SpiffeIdErrorCode,
  type SvidErrorCode,
  type VerificationErrorCode,
  type XfccErrorCode
} from './errors.js'
export { fingerprint256, thumbprintS256, toPeerIdentity, type PeerIdentity, type PeerIdentityJson, type PeerIdentityOptions } from './identity.js'
export { IdentityMatcher, compileMatcher, type IdentityPattern, type MatchableIdentity } from './matchers.js'
export {
  loadMaterial,
  materialTlsOptions,
  readMaterial,
  validateMaterial,
  type CertificateSummary,
  type CrlSummary,
  type Material,
  type MaterialInput,
  type MaterialOptions,
  type MaterialPems
} from './material.js'
export { MAX_SPIFFE_ID_LENGTH, MAX_TRUST_DOMAIN_LENGTH, isSpiffeId, parseSpiffeId, parseTrustDomain, type SpiffeId } from './spiffe-id.js'
export { FileSource, createFileSource, type ApplyListener, type ErrorListener, type FileSourceOptions, type FileSourceSpec, type Loaded, type ReloadFailure, type ReloadStatus, type UpdateListener } from './file-source.js'
export { MaterialSource, createMaterialSource, type MaterialFeed, type MaterialFeedReport, type MaterialFeedStatus, type MaterialSourceOptions } from './material-source.js'
// OCSP's functions are in `mtls-core/ocsp` (they load ASN.1 schemas and an HTTP client); its types are here too.
export type { OcspCheck, OcspError, OcspRequestMessage, OcspRequestOptions, OcspStatus, RevocationPoints, VerifyOcspOptions } from './ocsp.js'
export type { CrlCheck, CrlStatus, CrlStatusError, CrlStatusOptions, ReadCrl } from './crl-status.js'
export { parseXfcc, type ParseXfccOptions, type XfccElement } from './xfcc.js'
