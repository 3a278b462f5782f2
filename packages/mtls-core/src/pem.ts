/** One `-----BEGIN LABEL-----` block of a PEM text. */
export interface PemBlock {
  readonly label: string
  readonly der: Buffer
  /** The block's own PEM text, ending in a newline. */
  readonly pem: string
}

const BEGIN = '-----BEGIN '
const DASHES = '-----'

/**
 * Every PEM block of a text, in order. Text outside blocks is ignored, as OpenSSL does. A BEGIN line counts
 * only when the next marker is its own END line. One pass, linear in the text: a file of a million unmatched
 * BEGIN lines costs what reading it costs (a pattern with a back-reference was quadratic there).
 */
export function readPemBlocks (text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  let at = text.indexOf(BEGIN)
  while (at !== -1) {
    const labelStart = at + BEGIN.length
    const labelEnd = text.indexOf(DASHES, labelStart)
    if (labelEnd === -1) break
    const label = text.slice(labelStart, labelEnd)
    const bodyStart = labelEnd + DASHES.length
    // The body of a block holds no dashes: the next marker ends it, or shows the BEGIN line was unmatched.
    const next = text.indexOf(DASHES, bodyStart)
    if (next === -1) break
    const end = `${DASHES}END ${label}${DASHES}`
    if (isLabel(label) && text.startsWith(end, next)) {
      const der = Buffer.from(text.slice(bodyStart, next).replace(/\s+/g, ''), 'base64')
      blocks.push({ label, der, pem: toPem(der, label) })
      at = text.indexOf(BEGIN, next + end.length)
    } else {
      at = text.indexOf(BEGIN, next)
    }
  }
  return blocks
}

function isLabel (label: string): boolean {
  if (label === '') return false
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i)
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20)) return false
  }
  return true
}

/** Encodes DER as PEM, always ending in a newline so that blocks can be concatenated safely. */
export function toPem (der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64')
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
