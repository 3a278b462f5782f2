import { createHash } from 'node:crypto'
import { createFileSource, type FileSource } from 'mtls-core'
import { readFailureReason, readRegularFile } from 'mtls-core/internal'
import { codes } from './errors.js'
import { compilePolicy, type CompiledPolicy, type MtlsPolicy } from './policy.js'

// A policy of tens of thousands of ACL entries fits; anything larger is not a policy.
const MAX_POLICY_BYTES = 16 * 1024 * 1024

/**
 * A policy file through mtls-core's one reload protocol: read, validate (JSON, then compilePolicy), apply, commit.
 * Throws FST_MTLS_AUTHZ_INVALID_POLICY naming the file when it cannot be used.
 */
export async function policyFileSource (file: string): Promise<FileSource<CompiledPolicy>> {
  return await createFileSource({
    files: () => [file],
    read: async () => {
      let text: string
      try {
        // A regular file of reasonable size only: a FIFO would hold a thread forever, a device never end.
        text = (await readRegularFile(file, MAX_POLICY_BYTES)).toString('utf8')
      } catch (err) {
        throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: cannot read (${readFailureReason(err)})`)
      }
      return { raw: text, digest: createHash('sha256').update(text).digest('hex') }
    },
    validate: text => {
      let policy: MtlsPolicy<string>
      try {
        policy = JSON.parse(text) as MtlsPolicy<string>
      } catch (err) {
        throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: not JSON (${(err as Error).message})`)
      }
      try {
        return compilePolicy(policy)
      } catch (err) {
        throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: ${(err as Error).message.replace(/^fastify-mtls-authz: invalid policy: /, '')}`)
      }
    }
  })
}
