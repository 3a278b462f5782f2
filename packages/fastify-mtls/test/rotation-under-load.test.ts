import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { Pool } from 'undici'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { attempt, clientOf, nextUpdate, startServer, tempDir } from './helpers.js'

// Each rotation proves the same thing; a few, with requests in flight across every one, are enough.
const ROTATIONS = 6

t.test(`${ROTATIONS} kubelet-style rotations under keep-alive and new-connection load: no failed request`, async t => {
  const pki = await createTestPki()
  const dir = await tempDir(t)
  let version = 0
  const writeVersion = async (issued: IssuedCertificate): Promise<string> => {
    const name = `..2026_11_23_00_00_00.${++version}`
    await mkdir(join(dir, name))
    await Promise.all([writeFile(join(dir, name, 'tls.crt'), issued.chain), writeFile(join(dir, name, 'tls.key'), issued.key), writeFile(join(dir, name, 'ca.crt'), pki.ca)])
    return name
  }
  let current = await writeVersion(pki.server)
  await symlink(current, join(dir, '..data'))
  for (const file of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', file), join(dir, file))
  const { app, port, serverTls } = await startServer(t, { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }, { watch: { debounceMs: 20 } })

  const pool = new Pool(`https://127.0.0.1:${port}`, { connections: 2, connect: { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, servername: 'localhost' } })
  t.teardown(() => pool.close())
  const control = { stop: false }
  const results = { keepAlive: { ok: 0, failed: [] as string[] }, fresh: { ok: 0, failed: [] as string[] } }

  const keepAliveLoop = async (): Promise<void> => {
    while (!control.stop) {
      try {
        const { statusCode, body } = await pool.request({ path: '/whoami', method: 'GET' })
        await body.text()
        if (statusCode === 200) results.keepAlive.ok++
        else results.keepAlive.failed.push(`status ${statusCode}`)
      } catch (err) {
        results.keepAlive.failed.push((err as Error).message)
      }
    }
  }
  const newConnectionLoop = async (): Promise<void> => {
    while (!control.stop) {
      const result = await attempt(port, clientOf(pki, pki.orderService))
      if (result.status === 200) results.fresh.ok++
      else results.fresh.failed.push(result.errorCode ?? 'no answer')
    }
  }
  const loops = Promise.all([keepAliveLoop(), keepAliveLoop(), newConnectionLoop()])
  const done = (loop: { ok: number, failed: string[] }): number => loop.ok + loop.failed.length

  const fingerprints = [pki.server.fingerprint256]
  for (let round = 1; round <= ROTATIONS; round++) {
    // Load between every two rotations, however slow the machine: each loop has sent a request since the last one.
    const sent = { keepAlive: done(results.keepAlive), fresh: done(results.fresh) }
    await until(() => done(results.keepAlive) > sent.keepAlive && done(results.fresh) > sent.fresh, `requests before rotation ${round}`)
    const issued = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
    const next = await writeVersion(issued)
    const reloaded = nextUpdate(serverTls)
    await symlink(next, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    await rm(join(dir, current), { recursive: true })
    current = next
    t.equal(await reloaded, issued.fingerprint256, `rotation ${round} applied`)
    const seen = await attempt(port, clientOf(pki, pki.orderService))
    t.equal(seen.serverFingerprint, issued.fingerprint256, `rotation ${round}: a new connection sees the new certificate`)
    fingerprints.push(issued.fingerprint256)
  }
  control.stop = true
  await loops

  t.same(results.keepAlive.failed, [], 'no keep-alive request failed')
  t.same(results.fresh.failed, [], 'no new-connection request failed')
  t.ok(results.keepAlive.ok >= ROTATIONS, `keep-alive requests served: ${results.keepAlive.ok}`)
  t.ok(results.fresh.ok >= ROTATIONS, `new-connection requests served: ${results.fresh.ok}`)
  const stats = app.mtls.stats()
  t.equal(stats.reloads.succeeded, ROTATIONS)
  t.equal(stats.reloads.failed, 0)
  t.equal(new Set(fingerprints).size, ROTATIONS + 1)
})
