import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import type { FastifyBaseLogger } from 'fastify'
import { createFileSource, type FileSource, type FileSourceOptions, type Material } from 'mtls-core'
import { readFailureReason, readRegularFile } from 'mtls-core/internal'
import { codes } from './errors.js'

const KEY_LENGTH = 48

/**
 * Session ticket keys. The keys a server uses are derived from a base secret, the trust in force (CA bundle
 * and CRLs) and the server's own identity (the names in its certificate): a change of trust or of identity
 * gives new keys, so no resumed session outlives the trust it was verified under and none resumes into a
 * server that has become someone else, while a certificate-only rotation keeps them and clients keep
 * resuming. Replicas that share the base (a `ticketKeysFile`), the trust and the identity derive the same keys
 * and resume each other's sessions; services of different identities never do, even sharing the file.
 */
export class TicketKeys {
  readonly file: string | undefined
  /** The `ticketKeysFile`, through mtls-core's one reload protocol; `null` for a fixed or random base. */
  readonly source: FileSource<Buffer> | null
  readonly #base: Buffer | null
  readonly #mode: string

  private constructor (base: Buffer | null, source: FileSource<Buffer> | null, file: string | undefined, mode: string) {
    this.#base = base
    this.source = source
    this.file = file
    this.#mode = mode
  }

  /**
   * `mode` goes into the keys too: a session an optional-mode server issued to a client without a
   * certificate must not resume on a require-mode server that shares the base secret.
   */
  static async create (options: { ticketKeys?: Buffer | undefined, ticketKeysFile?: string | undefined, mode: string }): Promise<TicketKeys> {
    if (options.ticketKeys !== undefined && options.ticketKeysFile !== undefined) throw new codes.FST_MTLS_INVALID_OPTION('give ticketKeys or ticketKeysFile, not both')
    const file = options.ticketKeysFile
    if (file !== undefined) {
      if (typeof file !== 'string' || file === '') throw new codes.FST_MTLS_INVALID_OPTION('ticketKeysFile must be a file path')
      // Not watched here: the plugin starts watching with its own `watch` option.
      const watchOptions: FileSourceOptions = { watch: false }
      const source = await createFileSource({
        files: () => [file],
        read: async () => {
          const raw = await readKeyFile(file)
          return { raw, digest: createHash('sha256').update(raw).digest('hex') }
        },
        validate: raw => keyFromFile(file, raw)
      }, watchOptions)
      return new TicketKeys(null, source, file, options.mode)
    }
    if (options.ticketKeys !== undefined && (!Buffer.isBuffer(options.ticketKeys) || options.ticketKeys.length !== KEY_LENGTH)) {
      throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeys must be a Buffer of ${KEY_LENGTH} bytes`)
    }
    return new TicketKeys(options.ticketKeys ?? randomBytes(KEY_LENGTH), null, undefined, options.mode)
  }

  /** The keys for this material's trust and identity, from `base` (default: the base in force). */
  for (material: Material, base: Buffer = this.source?.current ?? this.#base as Buffer): Buffer {
    const context = createHash('sha256')
    for (const pem of [...material.ca, '--', ...material.crl]) context.update(pem)
    // Trust kept by trust domain: which bundle each root belongs to is trust too (a root moved is another trust).
    for (const [trustDomain, pems] of material.trustDomains ?? []) context.update(`--${trustDomain}:${pems.length}`).update(pems.join(''))
    const { leaf } = material
    context.update(JSON.stringify([this.#mode, leaf.subject, leaf.uris, leaf.dnsNames, leaf.ips, leaf.emails]))
    return Buffer.from(hkdfSync('sha256', base, context.digest(), 'fastify-mtls session ticket keys', KEY_LENGTH))
  }
}

// At most a little more than a key file holds, and a regular file only: a wrong path to a large file or a FIFO is refused unread.
async function readKeyFile (file: string): Promise<Buffer> {
  try {
    return await readRegularFile(file, 4096)
  } catch (err) {
    throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeysFile ${file}: cannot read (${readFailureReason(err)})`)
  }
}

// 48 bytes, raw (`openssl rand 48`) or base64 text (as a Kubernetes secret often holds it).
function keyFromFile (file: string, raw: Buffer): Buffer {
  if (raw.length === KEY_LENGTH) return raw
  const text = raw.toString('latin1').trim()
  const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : null
  if (decoded?.length === KEY_LENGTH) return decoded
  throw new codes.FST_MTLS_INVALID_OPTION(`ticketKeysFile ${file}: expected ${KEY_LENGTH} bytes, raw or base64; found ${raw.length} bytes`)
}

/** Warns when the keys file is readable by group or others: replicas of one service may share it, anyone else who can read it can mint sessions they resume. */
export async function warnIfKeysFileShared (file: string, log: FastifyBaseLogger): Promise<void> {
  try {
    const { mode } = await stat(file)
    if ((mode & 0o077) !== 0) log.warn({ file, mode: (mode & 0o777).toString(8) }, `the session ticket keys file ${file} is readable by group or others: anyone who can read it can resume sessions as any client of this service; share it only between replicas of one service, mode 0600`)
  } catch {} // reading it succeeded a moment ago; a failure here is reported by its next reload
}
