// CRL shards: a certificate names its CRL distribution points, a shard names the one it covers (issuingDistributionPoint)
// and lists only the revocations under it. OpenSSL is the judge of what a shard means to a relying party.
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { EXIT } from '../src/cli.js'
import { createRootCa, type IssuedCertificate } from '../src/index.js'
import { x509 } from '../src/x509.js'
import { cli, tempDir, usageError } from './cli-harness.js'
import { connectOnce } from './tls-harness.js'

const run = promisify(execFile)
const SHARD_1 = 'http://crl.example/shard-1.crl'
const SHARD_2 = 'http://crl.example/shard-2.crl'

const root = await createRootCa()
const intermediate = await root.createIntermediate()
const revokedIn1 = await intermediate.issue({ commonName: 'revoked-in-1', usage: 'client', crlDistributionPoints: [SHARD_1] })
const revokedIn2 = await intermediate.issue({ commonName: 'revoked-in-2', usage: 'client', crlDistributionPoints: [SHARD_2] })
const goodIn1 = await intermediate.issue({ commonName: 'good-in-1', usage: 'client', crlDistributionPoints: [SHARD_1] })
const noPoint = await intermediate.issue({ commonName: 'no-point', usage: 'client' })
intermediate.revoke(revokedIn1, { reason: 'keyCompromise' })
intermediate.revoke(revokedIn2)

const serials = (pem: string): string[] => new x509.X509Crl(pem).entries.map(entry => entry.serialNumber.toUpperCase()).sort()

/** What `openssl verify CHECK -CRLfile CRLS -CAfile ROOT -untrusted INTERMEDIATE LEAF` says: `OK` or its error line. */
async function opensslVerdict (files: { crls: string, root: string, intermediate: string, leaf: string }, check = '-crl_check'): Promise<string> {
  const args = ['verify', check, '-CRLfile', files.crls, '-CAfile', files.root, '-untrusted', files.intermediate, files.leaf]
  const { stdout, stderr } = await run('/usr/bin/openssl', args).catch((err: { stdout: string, stderr: string }) => err)
  return /: OK$/m.test(stdout) ? 'OK' : (/^error \d+ at \d+ depth lookup: .*$/m.exec(stderr + stdout)?.[0] ?? `unexpected: ${stdout}${stderr}`)
}

/** opensslVerdict of a certificate of `intermediate`, given these CRLs (PEM). */
async function opensslVerify (t: Parameters<typeof tempDir>[0], leaf: IssuedCertificate, crls: string, check?: string): Promise<string> {
  const dir = await tempDir(t)
  const files = { root: join(dir, 'root.pem'), intermediate: join(dir, 'intermediate.pem'), leaf: join(dir, 'leaf.pem'), crls: join(dir, 'crl.pem') }
  const contents = { root: root.certificate, intermediate: intermediate.certificate, leaf: leaf.certificate, crls }
  for (const key of Object.keys(files) as Array<keyof typeof files>) await writeFile(files[key], contents[key])
  return await opensslVerdict(files, check)
}

t.test('a certificate carries its distribution points; a shard carries its own, critical, as openssl prints them', async t => {
  t.same(revokedIn1.crlDistributionPoints, [SHARD_1])
  t.same(noPoint.crlDistributionPoints, [])
  t.ok(Object.isFrozen(revokedIn1.crlDistributionPoints))
  const dir = await tempDir(t)
  await writeFile(join(dir, 'leaf.pem'), revokedIn1.certificate)
  await writeFile(join(dir, 'shard.pem'), await intermediate.createCrl({ issuingDistributionPoint: SHARD_1 }))
  await writeFile(join(dir, 'whole.pem'), await intermediate.createCrl())
  const leaf = (await run('/usr/bin/openssl', ['x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')])).stdout
  t.match(leaf, new RegExp(`X509v3 CRL Distribution Points: *\n *Full Name:\n *URI:${SHARD_1.replace(/\./g, '\\.')}\n`))
  t.notMatch(leaf, /CRL Distribution Points: critical/, 'not critical (RFC 5280 4.2.1.13)')
  const shard = (await run('/usr/bin/openssl', ['crl', '-noout', '-text', '-in', join(dir, 'shard.pem')])).stdout
  t.match(shard, new RegExp(`X509v3 Issuing Distribution Point: critical\n *Full Name:\n *URI:${SHARD_1.replace(/\./g, '\\.')}\n`))
  t.notMatch((await run('/usr/bin/openssl', ['crl', '-noout', '-text', '-in', join(dir, 'whole.pem')])).stdout, /Issuing Distribution Point/)
  await writeFile(join(dir, 'plain.pem'), noPoint.certificate)
  t.notMatch((await run('/usr/bin/openssl', ['x509', '-noout', '-text', '-in', join(dir, 'plain.pem')])).stdout, /CRL Distribution Points/, 'no extension without points')
})

t.test('a shard lists only the revocations under its point; a CRL without one lists them all', async t => {
  t.same(serials(await intermediate.createCrl({ issuingDistributionPoint: SHARD_1 })), [revokedIn1.serialNumber])
  t.same(serials(await intermediate.createCrl({ issuingDistributionPoint: SHARD_2 })), [revokedIn2.serialNumber])
  t.same(serials(await intermediate.createCrl()), [revokedIn1.serialNumber, revokedIn2.serialNumber].sort())
  t.same(serials(await intermediate.createCrl({ issuingDistributionPoint: 'http://crl.example/empty.crl' })), [])
})

t.test('openssl verify -crl_check judges each certificate by the shard that covers it', async t => {
  const shard1 = await intermediate.createCrl({ issuingDistributionPoint: SHARD_1 })
  const shard2 = await intermediate.createCrl({ issuingDistributionPoint: SHARD_2 })
  const cases: Array<[string, IssuedCertificate, string, string]> = [
    ['revoked in its own shard: refused', revokedIn1, shard1, 'error 23 at 0 depth lookup: certificate revoked'],
    ['the other certificate revoked in its own shard: refused', revokedIn2, shard2, 'error 23 at 0 depth lookup: certificate revoked'],
    ['its shard does not list it: accepted', goodIn1, shard1, 'OK'],
    ['a shard that does not cover it is not its CRL, though it does not list it', revokedIn1, shard2, 'error 44 at 0 depth lookup: different CRL scope'],
    ['a certificate without distribution points is under no shard', noPoint, shard1, 'error 44 at 0 depth lookup: different CRL scope'],
    ['given every shard, a certificate is judged by its own', revokedIn2, shard1 + shard2, 'error 23 at 0 depth lookup: certificate revoked'],
    ['given every shard, a good one is accepted', goodIn1, shard2 + shard1, 'OK'],
    ['the whole CRL covers a certificate with points', revokedIn1, await intermediate.createCrl(), 'error 23 at 0 depth lookup: certificate revoked'],
    ['the whole CRL covers a certificate without points', noPoint, await intermediate.createCrl(), 'OK']
  ]
  for (const [what, leaf, crls, verdict] of cases) t.equal(await opensslVerify(t, leaf, crls), verdict, what)

  const bundle = await intermediate.createCrls({ issuingDistributionPoint: SHARD_1 })
  t.equal(bundle.length, 2)
  t.equal(new x509.X509Crl(bundle[1] as string).getExtension('2.5.29.28'), null, 'the root\'s CRL in the bundle is whole')
  t.equal(await opensslVerify(t, goodIn1, bundle.join(''), '-crl_check_all'), 'OK', 'with -crl_check_all the root\'s whole CRL covers the intermediate')
  t.equal(await opensslVerify(t, revokedIn1, bundle.join(''), '-crl_check_all'), 'error 23 at 0 depth lookup: certificate revoked')
})

t.test('a TLS server given a shard refuses the certificate revoked in it and the one it does not cover', async t => {
  const server = await intermediate.issue({ dnsNames: ['localhost'], usage: 'server' })
  const crl = await intermediate.createCrls({ issuingDistributionPoint: SHARD_1 })
  const serverOptions = { key: server.key, cert: server.chain, ca: root.certificate, crl, requestCert: true, rejectUnauthorized: false }
  const verdict = async (client: IssuedCertificate): Promise<string | null | undefined> =>
    (await connectOnce(serverOptions, { key: client.key, cert: client.chain, ca: root.certificate })).server?.authorizationError
  t.equal(await verdict(revokedIn1), 'CERT_REVOKED')
  t.equal(await verdict(goodIn1), null)
  // Node's handshake has the CRLs in its store rather than beside it, and OpenSSL then reports no CRL rather than the wrong scope.
  t.equal(await verdict(revokedIn2), 'UNABLE_TO_GET_CRL', 'a certificate of another shard is refused: the shard is not its CRL')
})

t.test('a revocation by serial alone is listed in every shard; one of a certificate without points in none', async t => {
  const ca = await root.createIntermediate()
  const bySerial = await ca.issue({ crlDistributionPoints: [SHARD_1] })
  const without = await ca.issue({})
  ca.revoke(bySerial.serialNumber)
  ca.revoke(without)
  t.equal(ca.revoked[0]?.crlDistributionPoints, null, 'unknown')
  t.same(ca.revoked[1]?.crlDistributionPoints, [], 'known to be none')
  for (const shard of [SHARD_1, SHARD_2]) t.same(serials(await ca.createCrl({ issuingDistributionPoint: shard })), [bySerial.serialNumber], shard)
  t.same(serials(await ca.createCrl()), [bySerial.serialNumber, without.serialNumber].sort())
  ca.revoke({ serialNumber: without.serialNumber, crlDistributionPoints: [SHARD_2] })
  t.same(serials(await ca.createCrl({ issuingDistributionPoint: SHARD_2 })), [bySerial.serialNumber, without.serialNumber].sort(), 'points given with the serial')
})

t.test('distribution point options are checked as every option is', async t => {
  const ca = await root.createIntermediate()
  const invalid = (message: string | RegExp): { code: string, message: string | RegExp } => ({ code: 'ERR_MTLS_PKI_INVALID_OPTION', message })
  await t.rejects(ca.issue({ crlDistributionPoints: SHARD_1 as unknown as string[] }), invalid('issue: crlDistributionPoints must be a list of URIs; got string'))
  await t.rejects(ca.issue({ crlDistributionPoints: [SHARD_1, 42 as unknown as string] }), invalid('issue: crlDistributionPoints: 42 is not a URI'))
  await t.rejects(ca.issue({ crlDistributionPoints: ['crl.example/shard-1.crl'] }), invalid('issue: crlDistributionPoints: "crl.example/shard-1.crl" is not a URI'))
  await t.rejects(ca.issue({ crlDistributionPoint: [SHARD_1] } as Record<string, unknown>), invalid(/^issue: unknown option "crlDistributionPoint" \(did you mean "crlDistributionPoints"\?\)/))
  await t.rejects(ca.createCrl({ issuingDistributionPoint: [SHARD_1] as unknown as string }), invalid(`createCrl: issuingDistributionPoint: ["${SHARD_1}"] is not a URI`))
  await t.rejects(ca.createCrls({ issuingDistributionPoint: '' }), invalid('createCrl: issuingDistributionPoint: "" is not a URI'))
  await t.rejects(ca.createCrls({ issuingDistributionPont: SHARD_1 } as Record<string, unknown>), invalid(/^createCrls: unknown option "issuingDistributionPont" \(did you mean "issuingDistributionPoint"\?\)/))
  t.throws(() => ca.revoke({ serialNumber: '0A', crlDistributionPoints: SHARD_1 as unknown as string[] }), invalid('revoke: crlDistributionPoints must be a list of URIs; got string'))
  t.same(ca.revoked, [], 'nothing recorded by the refused revoke')
})

t.test('the CLI issues with --crl-dp, records the points of a revoked file, and writes a shard with --idp that openssl judges', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  for (const [name, point] of [['bad', SHARD_1], ['good', SHARD_1], ['other', SHARD_2]] as const) {
    const issued = await cli('issue', name, '--dir', dir, '--client', '--crl-dp', point, '--crl-dp', 'ldap://crl.example/cn=backup')
    t.equal(issued.code, EXIT.ok, issued.stderr)
  }
  t.equal((await cli('issue', 'plain', '--dir', dir, '--client')).code, EXIT.ok)
  t.match((await cli('inspect', join(dir, 'bad.pem'))).stdout, `  CRL DPs:        ${SHARD_1}, ldap://crl.example/cn=backup\n`)
  t.notMatch((await cli('inspect', join(dir, 'plain.pem'))).stdout, 'CRL DPs')
  t.equal((await cli('revoke', join(dir, 'bad.pem'), '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('revoke', join(dir, 'other.pem'), '--dir', dir)).code, EXIT.ok)
  const recorded = JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8')) as Array<{ crlDistributionPoints?: string[] }>
  t.same(recorded.map(entry => entry.crlDistributionPoints), [[SHARD_1, 'ldap://crl.example/cn=backup'], [SHARD_2, 'ldap://crl.example/cn=backup']])

  const shardFile = join(dir, 'shard-1.pem')
  t.same(await cli('crl', '--dir', dir, '--idp', SHARD_1, '--out', shardFile), { code: EXIT.ok, stdout: `CRL with 1 revoked certificate(s) written to ${shardFile}\n`, stderr: '' })
  t.match((await cli('inspect', shardFile)).stdout, `  shard of:       ${SHARD_1}\n`)
  t.notMatch((await cli('inspect', join(dir, 'crl.pem'))).stdout, 'shard of')
  const verify = async (name: string): Promise<string> =>
    await opensslVerdict({ crls: shardFile, root: join(dir, 'root.pem'), intermediate: join(dir, 'intermediate.pem'), leaf: join(dir, `${name}.pem`) }, '-crl_check_all')
  t.equal(await verify('bad'), 'error 23 at 0 depth lookup: certificate revoked')
  t.equal(await verify('good'), 'OK')
  t.equal(await verify('other'), 'error 44 at 0 depth lookup: different CRL scope', 'revoked under shard 2, which this file is not')

  // Each command reads the CA directory afresh: the points came back from revoked.json.
  t.equal((await cli('crl', '--dir', dir, '--idp', SHARD_2, '--out', join(dir, 'shard-2.pem'))).code, EXIT.ok)
  const shard2 = (await readFile(join(dir, 'shard-2.pem'), 'utf8')).split(/(?<=-----END X509 CRL-----\n)/)[0] as string
  t.same(serials(shard2), [new X509Certificate(await readFile(join(dir, 'other.pem'))).serialNumber], 'shard 2 lists only the certificate under it')
})

t.test('the CLI refuses a distribution point that is not a URL, and a shard without --out', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.same(await cli('issue', 'web', '--dir', dir, '--crl-dp', 'crl.example'), { code: EXIT.usage, stdout: '', stderr: usageError('issue', '--crl-dp "crl.example" is not a URL (http://crl.example/shard-1.crl)') })
  t.same(await cli('crl', '--dir', dir, '--idp', 'shard-1', '--out', join(dir, 's.pem')), { code: EXIT.usage, stdout: '', stderr: usageError('crl', '--idp "shard-1" is not a URL (http://crl.example/shard-1.crl)') })
  t.same(await cli('crl', '--dir', dir, '--idp', SHARD_1), {
    code: EXIT.usage,
    stdout: '',
    stderr: usageError('crl', '--idp needs --out FILE: a shard lists only part of the revocations, and DIR/crl.pem keeps them all')
  })
})

t.test('revoked.json keeps distribution points where known and refuses malformed ones', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('issue', 'web', '--dir', dir, '--crl-dp', SHARD_1)).code, EXIT.ok)
  const serial = new X509Certificate(await readFile(join(dir, 'web.pem'))).serialNumber
  t.equal((await cli('revoke', serial, '--dir', dir)).code, EXIT.ok)
  t.same(Object.keys((JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8')) as object[])[0] as object), ['issuer', 'serialNumber', 'date', 'reason'], 'by serial: no points, as before')
  const good = { issuer: 'intermediate', serialNumber: '0A1B', date: '2026-11-01T00:00:00.000Z', reason: 'keyCompromise' }
  for (const points of ['http://x', [42], ['not a uri']]) {
    await writeFile(join(dir, 'revoked.json'), JSON.stringify([{ ...good, crlDistributionPoints: points }]))
    const result = await cli('crl', '--dir', dir)
    t.equal(result.code, EXIT.failure)
    t.equal(result.stderr, `mtls-pki crl: ${join(dir, 'revoked.json')}: entry 1: crlDistributionPoints must be a list of URIs; got ${JSON.stringify(points)}\n`)
  }
})
