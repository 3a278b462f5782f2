// Every CLI run restarted the CRL number at 1, so a relying party that keeps the highest number it has seen
// (RFC 5280 5.2.3) would take a fresh CRL for an old one; and revoked.json was believed as it stood.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../../src/cli.js'
import { x509 } from '../../src/x509.js'

async function cli (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  return { code, stdout, stderr }
}

// The CRL numbers of a CRL file, in file order (the intermediate's, then the root's).
async function crlNumbers (file: string): Promise<bigint[]> {
  const text = await readFile(file, 'utf8')
  return text.split(/(?<=-----END X509 CRL-----\n)/).filter(Boolean).map(pem => {
    const crl = new x509.X509Crl(pem)
    const extension = crl.getExtension('2.5.29.20')
    if (extension === null) throw new Error('no CRL number')
    // An INTEGER: tag, length, then the big-endian value.
    const value = new Uint8Array(extension.value)
    return BigInt('0x' + Buffer.from(value.subarray(2)).toString('hex'))
  })
}

t.test('CRL numbers increase across runs of the CLI, for every CA', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-pki-crl-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  t.equal((await cli('init', '--dir', dir)).code, 0)
  const seen: bigint[][] = [await crlNumbers(join(dir, 'crl.pem'))]
  for (let run = 0; run < 3; run++) {
    t.equal((await cli('crl', '--dir', dir)).code, 0)
    seen.push(await crlNumbers(join(dir, 'crl.pem')))
  }
  for (let i = 1; i < seen.length; i++) {
    for (const ca of [0, 1]) t.ok(seen[i]![ca]! > seen[i - 1]![ca]!, `run ${i}: CA ${ca} numbers ${seen[i - 1]![ca]} then ${seen[i]![ca]}`)
  }
})

t.test('revoked.json is validated entry by entry, naming the entry and the field', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-pki-revoked-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  t.equal((await cli('init', '--dir', dir)).code, 0)
  const good = { issuer: 'intermediate', serialNumber: '0A1B', date: '2026-11-01T00:00:00.000Z', reason: 'keyCompromise' }
  const cases: Array<[unknown, RegExp]> = [
    [[{ ...good, issuer: 'someone' }], /entry 1: issuer must be "root" or "intermediate"/],
    [[good, { ...good, serialNumber: 'xyz' }], /entry 2: serialNumber must be hexadecimal/],
    [[{ ...good, date: 'yesterday' }], /entry 1: date must be an ISO date/],
    [[{ ...good, reason: 'boredom' }], /entry 1: reason must be a revocation reason/],
    [[{ ...good, serial: '0A' }], /entry 1: unknown option "serial"/],
    [['0A1B'], /entry 1: expected \{ issuer, serialNumber, date, reason \}/]
  ]
  for (const [content, message] of cases) {
    await writeFile(join(dir, 'revoked.json'), JSON.stringify(content))
    const result = await cli('crl', '--dir', dir)
    t.equal(result.code, 1, JSON.stringify(content))
    t.match(result.stderr, message)
  }
  await writeFile(join(dir, 'revoked.json'), JSON.stringify([good]))
  const fine = await cli('crl', '--dir', dir)
  t.equal(fine.code, 0, fine.stderr)
  t.match(fine.stdout, 'CRL with 1 revoked certificate(s)')
})
