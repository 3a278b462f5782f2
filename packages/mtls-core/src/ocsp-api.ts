// `mtls-core/ocsp`: revocation by OCSP (requests, responses) and by CRL distribution points (a CRL judged for one
// certificate), and fetching both. An entry point of its own, so that the ASN.1 schemas and the HTTP client it needs
// are loaded by code that checks revocation, not by every importer of mtls-core.
export { OcspError, ocspRequest, ocspUrlOf, revocationPointsOf, verifyOcspResponse, type OcspCheck, type OcspRequestMessage, type OcspRequestOptions, type OcspStatus, type RevocationPoints, type VerifyOcspOptions } from './ocsp.js'
export { CrlStatusError, crlStatus, readCrl, type CrlCheck, type CrlStatus, type CrlStatusOptions, type ReadCrl } from './crl-status.js'
export { fetchCrl, fetchOcspResponse, type CrlFetchOptions, type OcspFetchOptions } from './ocsp-fetch.js'
