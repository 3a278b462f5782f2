// `mtls-core/ocsp`: OCSP requests and responses, and fetching them. An entry point of its own, so that the ASN.1
// schemas and the HTTP client it needs are loaded by code that uses OCSP, not by every importer of mtls-core.
export { OcspError, ocspRequest, ocspUrlOf, revocationPointsOf, verifyOcspResponse, type OcspCheck, type OcspRequestMessage, type OcspRequestOptions, type OcspStatus, type RevocationPoints, type VerifyOcspOptions } from './ocsp.js'
export { fetchOcspResponse, type OcspFetchOptions } from './ocsp-fetch.js'
