// Copied from mtls-core/src/pem.ts, minus what mtls-pki does not use: mtls-pki is a leaf and depends on no workspace package.

/** One `-----BEGIN LABEL-----` block of a PEM text. */
export interface PemBlock {
  readonly label: string
  readonly der: Buffer
}

const BEGIN = '-----BEGIN '
const DASHES = '-----'

/**
 * Every PEM block of a text, in order; text outside blocks is ignored, as OpenSSL does. A BEGIN line counts only
 * when the next marker is its own END line. One pass, linear in the text (a back-reference pattern was quadratic).
 */
export function readPemBlocks (text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  let at = text.indexOf(BEGIN)
  while (at !== -1) {
    const labelEnd = text.indexOf(DASHES, at + BEGIN.length)
    if (labelEnd === -1) break
    const label = text.slice(at + BEGIN.length, labelEnd)
    // The body of a block holds no dashes: the next marker ends it, or shows the BEGIN line was unmatched.
    const next = text.indexOf(DASHES, labelEnd + DASHES.length)
    if (next === -1) break
    const end = `${DASHES}END ${label}${DASHES}`
    if (/^[A-Z0-9 ]+$/.test(label) && text.startsWith(end, next)) {
      blocks.push({ label, der: Buffer.from(text.slice(labelEnd + DASHES.length, next).replace(/\s+/g, ''), 'base64') })
      at = text.indexOf(BEGIN, next + end.length)
    } else {
      at = text.indexOf(BEGIN, next)
    }
  }
  return blocks
}

/** Encodes DER as PEM, always ending in a newline so that blocks can be concatenated safely. */
export function toPem (der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64')
  return `-----BEGIN ${label}-----\n${(base64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`
}
