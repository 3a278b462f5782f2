import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import { ChainVerifier, parseXfcc } from 'mtls-core'
import { readPemBlocks, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes, PEER_ERRORS, verdictOf, type PeerCertificateError } from './errors.js'

type PemInput = string | Buffer

/** How a proxy writes the client certificate into a header. */
export type ForwardedFormat = 'rfc9440' | 'xfcc' | 'pem' | 'pem-url-encoded' | 'base64-der'

/** Ready-made settings for common proxies. */
export type ForwardedPreset = 'envoy' | 'rfc9440' | 'nginx' | 'aws-alb' | 'aspnet'

export interface ForwardedOptions {
  /** Header name (any case). */
  header: string
  format: ForwardedFormat
}

export const FORWARDED_PRESETS: Readonly<Record<ForwardedPreset, ForwardedOptions>> = Object.freeze({
  envoy: { header: 'x-forwarded-client-cert', format: 'xfcc' },
  rfc9440: { header: 'client-cert', format: 'rfc9440' },
  nginx: { header: 'x-ssl-client-cert', format: 'pem-url-encoded' }, // proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
  'aws-alb': { header: 'x-amzn-mtls-clientcert', format: 'pem-url-encoded' },
  aspnet: { header: 'x-client-cert', format: 'base64-der' }
})

export const FORWARDED_FORMATS: readonly ForwardedFormat[] = ['rfc9440', 'xfcc', 'pem', 'pem-url-encoded', 'base64-der']

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
      // RFC 9440: a structured-field Byte Sequence, `:<base64 DER>:`.
      const text = value.trim()
      if (text.length < 3 || !text.startsWith(':') || !text.endsWith(':')) throw malformed('Client-Cert is not a byte sequence (:base64:)')
      return base64(text.slice(1, -1))
    }
    case 'base64-der':
      return base64(value.trim())
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

function pem (text: string): Uint8Array {
  // Counted before any pattern runs: one BEGIN line, or the header is refused whatever else it holds.
  const begins = text.split('-----BEGIN').length - 1
  if (begins > 1) throw malformed(`${begins} PEM blocks where one certificate belongs`)
  const blocks = readPemBlocks(text)
  if (blocks.length === 0 || blocks[0]?.label !== 'CERTIFICATE') throw malformed('no PEM certificate')
  return blocks[0].der
}

// Glued DER (two certificates in one base64 string) is caught when the certificate is read: bytes after it are refused.
function base64 (text: string): Uint8Array {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw malformed('not base64')
  return Buffer.from(text, 'base64')
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
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded.header must be a header name; got ${JSON.stringify(header)}`)
  }
  if (!FORWARDED_FORMATS.includes(format)) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded.format must be one of ${FORWARDED_FORMATS.join(', ')}; got ${JSON.stringify(format)}`)
  }
  return { header: header.toLowerCase(), format }
}
