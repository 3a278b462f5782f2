import { parseXfcc } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { PEER_ERRORS, type PeerCertificateError } from './errors.js'

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
  constructor (readonly code: PeerCertificateError, message: string) {
    super(message)
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
