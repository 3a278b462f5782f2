// A development PKI for the example: a CA, the server's certificate and key, a client certificate, and the session
// ticket keys file (48 random bytes, mode 0600) every worker reads.
import { randomBytes } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestPki, writeCertificateFiles } from 'mtls-pki'

export async function makeFiles (dir) {
  dir ??= await mkdtemp(join(tmpdir(), 'mtls-cluster-'))
  const pki = await createTestPki()
  await writeCertificateFiles(dir, 'server', pki.server)
  await writeCertificateFiles(dir, 'client', pki.orderService)
  await writeFile(join(dir, 'ca.pem'), pki.ca)
  await writeFile(join(dir, 'ticket-keys'), randomBytes(48), { mode: 0o600 })
  return { dir, pki }
}
