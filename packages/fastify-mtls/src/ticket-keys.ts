import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { Material } from 'mtls-core'
import { codes } from './errors.js'

const KEY_LENGTH = 48

/**
 * Session ticket keys. The keys a server uses are derived from a base secret and the trust in force (CA
 * bundle and CRLs): a change of trust gives new keys, so no resumed session outlives the trust it was
 * verified under, while a certificate-only reload keeps them and clients keep resuming. Replicas that share
 * the base (a `ticketKeysFile` from one secret) and the trust derive the same keys and resume each other's
 * sessions.
 */
export class TicketKeys {
  readonly file: string | undefined
  #base: Buffer

  private constructor (base: Buffer, file: string | undefined) {
    this.#base = base
    this.file = file
  }

  static async create (options: { ticketKeys?: Buffer | undefined, ticketKeysFile?: string | undefined }): Promise<TicketKeys> {
    if (options.ticketKeys !== undefined && options.ticketKeysFile !== undefined) throw new codes.FST_MTLS_INVALID_OPTION('give ticketKeys or ticketKeysFile, not both')
    if (options.ticketKeysFile !== undefined) return new TicketKeys(await readKeyFile(options.ticketKeysFile), options.ticketKeysFile)
    if (options.ticketKeys !== undefined && (!Buffer.isBuffer(options.ticketKeys) || options.ticketKeys.length !== KEY_LENGTH)) {
      throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeys must be a Buffer of ${KEY_LENGTH} bytes`)
    }
    return new TicketKeys(options.ticketKeys ?? randomBytes(KEY_LENGTH), undefined)
  }

  /** The keys for this material's trust. */
  for (material: Material): Buffer {
    const trust = createHash('sha256')
    for (const pem of [...material.ca, '--', ...material.crl]) trust.update(pem)
    return Buffer.from(hkdfSync('sha256', this.#base, trust.digest(), 'fastify-mtls session ticket keys', KEY_LENGTH))
  }

  /** Re-reads `ticketKeysFile`; resolves true when the keys changed. Throws FST_MTLS_INVALID_OPTION for a bad file. */
  async reload (): Promise<boolean> {
    if (this.file === undefined) return false
    const base = await readKeyFile(this.file)
    if (base.equals(this.#base)) return false
    this.#base = base
    return true
  }
}

// 48 bytes, raw (`openssl rand 48`) or base64 text (as a Kubernetes secret often holds it).
async function readKeyFile (file: string): Promise<Buffer> {
  let raw: Buffer
  try {
    raw = await readFile(file)
  } catch (err) {
    throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeysFile ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (raw.length === KEY_LENGTH) return raw
  const text = raw.toString('latin1').trim()
  const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : null
  if (decoded?.length === KEY_LENGTH) return decoded
  throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeysFile ${file}: expected ${KEY_LENGTH} bytes, raw or base64; found ${raw.length} bytes`)
}
