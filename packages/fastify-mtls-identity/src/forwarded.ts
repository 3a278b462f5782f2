import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import { ChainVerifier, parseXfcc } from 'mtls-core'
import { snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes, PEER_ERRORS, verdictOf, type PeerCertificateError } from './errors.js'

type PemInput = string | Buffer

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** How a proxy writes the client certificate into a header. */
export type ForwardedFormat = 'rfc9440' | 'xfcc' | 'pem' | 'pem-url-encoded' | 'base64-der' | 'base64-der-url-escaped'

/** Ready-made settings for common proxies, each named after the proxy (README: "Behind a proxy"). */
export type ForwardedPreset =
  | 'envoy' | 'rfc9440' | 'nginx' | 'haproxy' | 'caddy' | 'traefik' | 'aws-alb' | 'aws-alb-verify' | 'cloudflare'
  | 'azure-app-service' | 'aspnet'

export interface ForwardedOptions {
  /** Header name (any case). */
  header: string
  format: ForwardedFormat
}

export const FORWARDED_PRESETS: Readonly<Record<ForwardedPreset, ForwardedOptions>> = Object.freeze({
  envoy: { header: 'x-forwarded-client-cert', format: 'xfcc' },
  rfc9440: { header: 'client-cert', format: 'rfc9440' },
  nginx: { header: 'x-ssl-client-cert', format: 'pem-url-encoded' }, // proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
  haproxy: { header: 'x-ssl-client-cert', format: 'base64-der' }, // http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64]
  caddy: { header: 'x-ssl-client-cert', format: 'base64-der' }, // header_up X-SSL-Client-Cert {http.request.tls.client.certificate_der_base64}
  traefik: { header: 'x-forwarded-tls-client-cert', format: 'base64-der-url-escaped' }, // passTLSClientCert { pem: true }
  'aws-alb': { header: 'x-amzn-mtls-clientcert', format: 'pem-url-encoded' }, // passthrough mode: the chain the client sent
  'aws-alb-verify': { header: 'x-amzn-mtls-clientcert-leaf', format: 'pem-url-encoded' }, // verify mode: the leaf ALB verified
  cloudflare: { header: 'cf-client-cert-der-base64', format: 'base64-der' },
  'azure-app-service': { header: 'x-arr-clientcert', format: 'base64-der' },
  aspnet: { header: 'x-client-cert', format: 'base64-der' }
})

export const FORWARDED_FORMATS: readonly ForwardedFormat[] = ['rfc9440', 'xfcc', 'pem', 'pem-url-encoded', 'base64-der', 'base64-der-url-escaped']

/** A proxy's verdict header: the request's forwarded certificate is believed only when the header is exactly `value`. */
export interface ProxyVerdictOptions {
  /** Header name (any case). */
  header: string
  /** What the proxy writes when it verified the client certificate, compared exactly (case included). */
  value: string
}

/** Proxies that write their verification result into a header of the configuration's choosing. */
export type ProxyVerdictPreset = 'nginx' | 'haproxy'

export const PROXY_VERDICT_PRESETS: Readonly<Record<ProxyVerdictPreset, ProxyVerdictOptions>> = Object.freeze({
  nginx: { header: 'x-ssl-client-verify', value: 'SUCCESS' }, // proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
  haproxy: { header: 'x-ssl-client-verify', value: '0' } // http-request set-header X-SSL-Client-Verify %[ssl_c_verify]
})

/** A forwarded header that cannot be turned into a certificate; `code` is one of PEER_ERRORS. */
export class ForwardedHeaderError extends Error {
  readonly code: PeerCertificateError

  constructor (code: PeerCertificateError, message: string) {
    super(message)
    this.code = code
  }
}

/**
 * The client certificate's DER from a forwarded header value, or ForwardedHeaderError. A header holds one
 * certificate: two (a proxy that merged a client's copy of the header with its own) are malformed in every
 * format, never resolved by picking one.
 */
export function forwardedCertificate (value: string, format: ForwardedFormat): Uint8Array {
  switch (format) {
    case 'rfc9440': {
      // RFC 9440: a structured-field Byte Sequence, `:<base64 DER>:`; RFC 8941 4.2.7: padding may be left out.
      const text = value.trim()
      if (text.length < 3 || !text.startsWith(':') || !text.endsWith(':')) throw malformed('Client-Cert is not a byte sequence (:base64:)')
      return base64(text.slice(1, -1), true)
    }
    case 'base64-der':
      return base64(value.trim(), false)
    case 'base64-der-url-escaped':
      // Traefik's passTLSClientCert: the PEM body without its delimiters or line breaks, `+`, `/` and `=` URL-escaped
      // before 2.9.4 and bare since; its chain is comma-separated, so a comma (two certificates) is refused below.
      return base64(unescapeBase64(value.trim()), false)
    case 'pem':
      return pem(value)
    case 'pem-url-encoded': {
      let decoded: string
      try {
        decoded = decodeURIComponent(value)
      } catch {
        throw malformed('not valid URL encoding')
      }
      return pem(decoded)
    }
    case 'xfcc': {
      let elements
      try {
        elements = parseXfcc(value)
      } catch (err) {
        throw malformed((err as Error).message)
      }
      // The last element is the one the nearest proxy (the trusted one) appended; earlier ones came from
      // hops further away and are only as trustworthy as those hops.
      const cert = elements[elements.length - 1]?.cert
      if (cert === null || cert === undefined) {
        throw new ForwardedHeaderError(PEER_ERRORS.ERR_MTLS_FORWARDED_CERTIFICATE_MISSING, 'the proxy\'s XFCC element has no Cert (configure it to forward the certificate)')
      }
      return pem(cert)
    }
  }
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----'
const PEM_END = '-----END CERTIFICATE-----'

/**
 * One PEM certificate and nothing but whitespace around it. Text before the block is refused, not skipped: a
 * leaf damaged past its BEGIN line would otherwise let the block after it (a chain's intermediate, or a
 * client's own) take its place; text after END is refused for the same reason.
 */
function pem (text: string): Uint8Array {
  const body = text.trim()
  if (!body.startsWith(PEM_BEGIN)) throw malformed(body.includes(PEM_BEGIN) ? 'text before the PEM certificate' : 'no PEM certificate')
  const end = body.indexOf(PEM_END)
  if (end === -1) throw malformed('a PEM certificate without its END line')
  if (end + PEM_END.length !== body.length) throw malformed(body.includes('-----BEGIN', end) ? 'more than one PEM block where one certificate belongs' : 'text after the PEM certificate')
  // Line breaks (or the spaces some proxies put in their place) inside the body, nothing else.
  return base64(body.slice(PEM_BEGIN.length, end).replace(/[ \t\r\n]+/g, ''), false)
}

/**
 * Strict base64 of one certificate: the standard alphabet, whole, and canonical (decoding and encoding again
 * gives the same text), so padding in the middle, too much padding and stray bits under the padding are refused.
 * `unpadded`: the padding may be left out (RFC 8941 Byte Sequences), but not given in part.
 * Glued DER (two certificates in one string) is caught when the certificate is read: bytes after it are refused.
 */
function base64 (text: string, unpadded: boolean): Uint8Array {
  if (text.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw malformed('not base64')
  const bare = text.endsWith('=') ? text.slice(0, text.indexOf('=')) : text
  if (text.length % 4 !== 0 && !(unpadded && bare === text)) throw malformed(unpadded ? 'base64 with part of its padding' : 'base64 without its padding')
  const der = Buffer.from(bare, 'base64')
  if (der.toString('base64').replace(/=+$/, '') !== bare) throw malformed('not canonical base64 (a truncated group, or bits under the padding)')
  return der
}

const TRAEFIK_ESCAPES: Readonly<Record<string, string>> = { '2B': '+', '2F': '/', '3D': '=' }

// Only the three characters Traefik's escaping changed in base64 (`%2B`, `%2F`, `%3D`, either case); any other `%`
// stays, and is no base64.
function unescapeBase64 (text: string): string {
  return text.includes('%') ? text.replace(/%(2B|2F|3D)/gi, escape => TRAEFIK_ESCAPES[escape.slice(1).toUpperCase()] as string) : text
}

function malformed (reason: string): ForwardedHeaderError {
  return new ForwardedHeaderError(PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED, reason)
}

/** Every value of a header, read from the raw list: HTTP/1.1 and HTTP/2 alike, so a repeated header is seen on both. */
export function headerValues (raw: IncomingMessage | Http2ServerRequest, name: string): string[] {
  const list = raw.rawHeaders
  const values: string[] = []
  for (let i = 0; i < list.length; i += 2) {
    const key = list[i] as string
    if (key.length === name.length && key.toLowerCase() === name) values.push(list[i + 1] as string)
  }
  return values
}

/** Why a forwarded header gave no identity: the header's own faults, the verifier's verdict (OpenSSL's names), or the identity rules' codes. */
export function forwardedErrorCode (err: unknown): PeerCertificateError {
  if (err instanceof ForwardedHeaderError) return err.code
  const code = verdictOf(err, PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED)
  return code === 'ERR_MTLS_CERTIFICATE_MALFORMED' ? PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED : code
}

/** The verifier of forwarded certificates from the `ca` and `crl` options, or `null` without them (the server's trust is used); `needed`: forwarded certificates are verified. */
export function forwardedVerifier (options: { ca?: PemInput | PemInput[] | undefined, crl?: PemInput | PemInput[] | undefined }, needed: boolean): ChainVerifier | null {
  if (options.ca === undefined && options.crl === undefined) return null
  if (!needed) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('ca and crl verify forwarded certificates: they need forwarded, and verifyForwarded not false')
  if (options.ca === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('crl needs ca: the CAs whose revocations it lists')
  try {
    return new ChainVerifier({ ca: options.ca, ...(options.crl === undefined ? {} : { crl: options.crl }) })
  } catch (err) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`ca/crl: ${(err as Error).message}`)
  }
}

/** The `forwarded` option checked and resolved (a preset name to its settings), or `null` when it is left out. */
export function resolveForwarded (forwarded: ForwardedPreset | ForwardedOptions | undefined): ForwardedOptions | null {
  if (forwarded === undefined) return null
  if (typeof forwarded === 'string') {
    const preset = Object.hasOwn(FORWARDED_PRESETS, forwarded) ? FORWARDED_PRESETS[forwarded] : undefined
    if (preset === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded must be one of ${Object.keys(FORWARDED_PRESETS).join(', ')} or { header, format }; got ${JSON.stringify(forwarded)}`)
    return preset
  }
  if (typeof forwarded !== 'object' || forwarded === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('forwarded must be a preset name or { header, format }')
  const given = snapshotOptions(forwarded)
  const { header, format } = given
  const unknown = unknownOption(given, ['header', 'format'], 'forwarded')
  if (unknown !== null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(unknown)
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded.header must be a header name; got ${JSON.stringify(header)}`)
  }
  if (!FORWARDED_FORMATS.includes(format)) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded.format must be one of ${FORWARDED_FORMATS.join(', ')}; got ${JSON.stringify(format)}`)
  }
  return { header: header.toLowerCase(), format }
}

/**
 * The `proxyVerdict` option checked and resolved, or `null` when it is left out. The value is compared exactly, so
 * one that could never arrive (HTTP strips the spaces around a header value; no control characters) is refused here
 * rather than failing every request.
 */
export function resolveProxyVerdict (verdict: ProxyVerdictPreset | ProxyVerdictOptions | undefined, forwarded: ForwardedOptions | null): ProxyVerdictOptions | null {
  if (verdict === undefined) return null
  if (forwarded === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('proxyVerdict needs forwarded: it says whether to believe the forwarded certificate')
  let resolved: ProxyVerdictOptions
  if (typeof verdict === 'string') {
    const preset = Object.hasOwn(PROXY_VERDICT_PRESETS, verdict) ? PROXY_VERDICT_PRESETS[verdict] : undefined
    if (preset === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`proxyVerdict must be one of ${Object.keys(PROXY_VERDICT_PRESETS).join(', ')} or { header, value }; got ${JSON.stringify(verdict)}`)
    resolved = preset
  } else {
    if (typeof verdict !== 'object' || verdict === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('proxyVerdict must be a preset name or { header, value }')
    const given = snapshotOptions(verdict)
    const unknown = unknownOption(given, ['header', 'value'], 'proxyVerdict')
    if (unknown !== null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(unknown)
    const { header, value } = given
    if (typeof header !== 'string' || !HEADER_NAME.test(header)) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`proxyVerdict.header must be a header name; got ${JSON.stringify(header)}`)
    if (typeof value !== 'string' || !/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value)) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`proxyVerdict.value must be the exact text the proxy writes on success (visible ASCII, no spaces around it); got ${JSON.stringify(value)}`)
    }
    resolved = { header: header.toLowerCase(), value }
  }
  if (resolved.header === forwarded.header) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`proxyVerdict.header and the forwarded certificate's header are both ${resolved.header}`)
  return resolved
}
