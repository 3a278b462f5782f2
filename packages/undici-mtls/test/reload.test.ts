import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { request } from 'undici'
import { thumbprintS256 } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { hangLimit } from 'mtls-test-support'
import { createMtlsAgent } from '../src/index.js'
import { startServer } from './helpers.js'

const ROTATIONS = 20
const pki = await createTestPki()
const thumbprintOf = (issued: IssuedCertificate): string => thumbprintS256(readPemBlocks(issued.certificate)[0]!.der)

async function clientFiles (t: { teardown: (fn: () => unknown) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'undici-mtls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await Promise.all([writeFile(files.certFile, pki.orderService.chain), writeFile(files.keyFile, pki.orderService.key), writeFile(files.caFile, pki.ca)])
  const rotate = async (next: IssuedCertificate): Promise<void> => {
    for (const [file, text] of [[files.keyFile, next.key], [files.certFile, next.chain]] as const) {
      await writeFile(`${file}.tmp`, text)
      await rename(`${file}.tmp`, file)
    }
  }
  return { files, rotate }
}

t.test(`${ROTATIONS} client certificate rotations under a request loop: no failed request, the server sees each new certificate on the next new connection`, async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const { files, rotate } = await clientFiles(t)
  // One connection at a time, so "the next new connection" is well defined while the loop runs.
  const agent = await createMtlsAgent({ ...files, server: 'spiffe://mycompany.com/production/payment-service', watch: { debounceMs: 20 }, agent: { connections: 1 } })
  t.teardown(() => agent.close())
  const get = async (reset = false): Promise<{ fingerprint256: string, resumed: boolean }> => {
    const response = await request(`${url}/whoami`, { dispatcher: agent, reset })
    return await response.body.json() as { fingerprint256: string, resumed: boolean }
  }

  const failures: string[] = []
  let served = 0
  const control = { stop: false }
  // Only a bound for a run that went wrong (the loop is stopped below).
  const deadline = Date.now() + hangLimit(60_000)
  const loop = (async () => {
    for (let i = 0; i < 20_000 && !control.stop && Date.now() < deadline; i++) {
      try {
        await get(i % 10 === 9) // every tenth request closes its connection, so new ones keep being made
        served++
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  })()

  await get(true)
  t.equal((await get(true)).resumed, true, 'new connections resume the TLS session')
  for (let round = 1; round <= ROTATIONS; round++) {
    const next = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/order-service' })
    const updated = new Promise<void>(resolve => agent.source.on('update', function listener () { agent.source.off('update', listener); resolve() }))
    await rotate(next)
    await updated
    await get(true) // ends whatever connection the next request would have reused
    const seen = await get(true)
    t.equal(seen.fingerprint256, next.fingerprint256, `rotation ${round}: the next new connection presents the new certificate, never a resumed session of the old one`)
  }
  control.stop = true
  await loop
  t.same(failures, [], 'no request failed')
  t.ok(served > ROTATIONS, `requests served during the rotations: ${served}`)
  t.match(agent.status(), { lastReload: { ok: true } })
})

t.test('a bad replacement is refused; the old certificate keeps working and status() says why', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const { files, rotate } = await clientFiles(t)
  const agent = await createMtlsAgent({ ...files, watch: false })
  t.teardown(() => agent.close())
  t.equal(agent.status().lastReload, null)
  t.same(await agent.reload(), { changed: false, fingerprint256: pki.orderService.fingerprint256, thumbprintS256: thumbprintOf(pki.orderService) })
  await rotate(pki.expired)
  await t.rejects(agent.reload(), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  t.match(agent.status(), { certificate: { fingerprint256: pki.orderService.fingerprint256 }, lastReload: { ok: false, error: { code: 'ERR_MTLS_MATERIAL_EXPIRED' } } })
  const response = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
  t.match(await response.body.json(), { fingerprint256: pki.orderService.fingerprint256 }, 'new connections still use the old certificate')
  const resumedBefore = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
  t.match(await resumedBefore.body.json(), { resumed: true }, 'sessions resume before the reload')
  await rotate(pki.inventoryService)
  t.same(await agent.reload(), { changed: true, fingerprint256: pki.inventoryService.fingerprint256, thumbprintS256: thumbprintOf(pki.inventoryService) })
  const afterReload = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
  t.match(await afterReload.body.json(), { resumed: false, fingerprint256: pki.inventoryService.fingerprint256 }, 'the first connection after a reload is a full handshake with the new certificate')
  t.match(agent.status(), { certificate: { uris: ['spiffe://mycompany.com/production/inventory-service'] }, lastReload: { ok: true } })
})

t.test('the agent shows the RFC 8705 thumbprint of the certificate it presents, and a reload changes it', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const { files, rotate } = await clientFiles(t)
  const agent = await createMtlsAgent({ ...files, watch: false })
  t.teardown(() => agent.close())
  const presented = async (): Promise<string> => {
    const response = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
    return (await response.body.json() as { fingerprint256: string }).fingerprint256
  }
  t.equal(agent.status().certificate.thumbprintS256, thumbprintOf(pki.orderService))
  t.match(agent.status().certificate.thumbprintS256, /^[A-Za-z0-9_-]{43}$/)
  t.equal(await presented(), pki.orderService.fingerprint256)

  const next = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/order-service' })
  await rotate(next)
  const reloaded = await agent.reload()
  t.same(reloaded, { changed: true, fingerprint256: next.fingerprint256, thumbprintS256: thumbprintOf(next) })
  t.equal(agent.status().certificate.thumbprintS256, thumbprintOf(next), 'the thumbprint follows the rotation')
  t.equal(await presented(), next.fingerprint256, 'and is the certificate new connections present')
})
