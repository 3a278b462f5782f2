/** One `-----BEGIN LABEL-----` block of a PEM text. */
export interface PemBlock {
  readonly label: string
  readonly der: Buffer
  /** The block's own PEM text, ending in a newline. */
  readonly pem: string
}

// A fixed pattern over our own input; the label back-reference makes BEGIN and END agree.
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** Every PEM block of a text, in order. Text outside blocks is ignored, as OpenSSL does. */
export function readPemBlocks (text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  for (const match of text.matchAll(PEM_BLOCK)) {
    const der = Buffer.from((match[2] as string).replace(/\s+/g, ''), 'base64')
    blocks.push({ label: match[1] as string, der, pem: toPem(der, match[1] as string) })
  }
  return blocks
}

/** Encodes DER as PEM, always ending in a newline so that blocks can be concatenated safely. */
export function toPem (der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64')
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
