import type { FileHandle } from 'node:fs/promises'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import type { TestPki } from 'mtls-pki'
import { startFastifyServer, type Teardown } from 'mtls-test-support'
import { request, type Agent } from 'undici'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../src/index.js'

export { agentFor } from 'mtls-test-support'

/** An optional-mode mTLS server with identity (trusting spiffe://mycompany.com/infra/** to forward XFCC) and authz. */
export async function startServer (t: Teardown, pki: TestPki, authz: FastifyMtlsAuthzOptions, routes: (app: FastifyInstance) => void, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, { trustedProxies: { identities: ['spiffe://mycompany.com/infra/**'] }, forwarded: 'envoy' })
    await app.register(fastifyMtlsAuthz, authz)
    routes(app)
  })
  return { app, url }
}

export async function call (url: string, agent: Agent, method: string, path: string, headers: string[] = [], body?: string): Promise<{ status: number, code: string | null, message: string | null }> {
  const response = await request(`${url}${path}`, { dispatcher: agent, method: method as 'GET', headers, ...(body === undefined ? {} : { body }) })
  const text = await response.body.text()
  const json = text.startsWith('{') ? JSON.parse(text) as { code?: string, message?: string } : {}
  return { status: response.statusCode, code: json.code ?? null, message: json.message ?? null }
}

/**
 * Replaces `file` whole, as deployments do: a new file renamed over it, so a watcher sees one change and never reads
 * half of one. Written outside the watched directory first.
 */
export async function fileReplacer (t: Teardown, file: string): Promise<(text: string) => Promise<void>> {
  const staging = await mkdtemp(join(tmpdir(), 'mtls-authz-staging-'))
  t.teardown(() => rm(staging, { recursive: true, force: true }))
  let written = 0
  return async text => {
    const next = join(staging, String(written++))
    await writeFile(next, text)
    await rename(next, file)
  }
}

/**
 * How many times this process has opened `file` through node:fs/promises, as the policy file's reload does: the sign
 * that a change was read, where a refusal of text refused before leaves no other. Counted once open, so what that
 * read sees is what the path held then. Undone at teardown.
 */
export function countOpens (t: Teardown, file: string): () => number {
  const fsp = createRequire(import.meta.url)('node:fs/promises') as { open: (...args: unknown[]) => Promise<FileHandle> }
  const original = fsp.open
  let opens = 0
  fsp.open = async (...args) => {
    const handle = await original(...args)
    if (String(args[0]) === file) opens++
    return handle
  }
  // The ESM bindings of node:fs/promises (mtls-core's `open`) follow.
  syncBuiltinESMExports()
  t.teardown(() => { fsp.open = original; syncBuiltinESMExports() })
  return () => opens
}
