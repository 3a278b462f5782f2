export { WorkloadApiClient, type FetchJwtSvidOptions, type WorkloadApiClientOptions } from './client.js'
export { parseWorkloadEndpoint, type WorkloadEndpoint } from './endpoint.js'
export { WorkloadApiError, type WorkloadApiErrorCode } from './errors.js'
export type { BackoffOptions } from './backoff.js'
export type { Watch, WatchListener } from './stream-watch.js'
export type { X509BundlesUpdate, X509Bundles, X509Context, X509Svid } from './x509-context.js'
export { derToPem, svidToPem } from './pem.js'
export {
  X509Source,
  createX509Source,
  type SvidPicker,
  type X509Material,
  type X509SourceEvents,
  type X509SourceOptions,
  type X509SourceStatus
} from './x509-source.js'
export type { JwtBundle, JwtBundles, JwtSvid } from './jwt-bundles.js'
export { JWT_SVID_ALGORITHMS, validateJwtSvid, type ValidateJwtSvidOptions, type ValidatedJwtSvid } from './jwt-validate.js'
export { JwtSource, createJWTSource, type JwtSourceEvents, type JwtSourceOptions, type JwtSourceStatus } from './jwt-source.js'
export { MAX_BUNDLE_BYTES, formatSpiffeBundle, parseSpiffeBundle, type SpiffeBundle, type SpiffeBundleInput } from './spiffe-bundle.js'
export { fetchBundle, type FetchBundleOptions, type FetchBundleSpiffeOptions, type FetchBundleWebOptions } from './bundle-fetch.js'
export {
  FederatedBundleSource,
  createFederatedBundleSource,
  type FederatedBundleSourceEvents,
  type FederatedBundleSourceOptions,
  type FederatedBundleSourceStatus
} from './federated-bundle-source.js'
export { BundleSource, createBundleSource, type BundleSourceEvents, type BundleSourceOptions, type BundleSourceStatus } from './bundle-source.js'
