import { X509Certificate } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parseIsoDate, validityOptions } from '../src/cli-validity.js'
import { EXIT } from '../src/cli.js'
import { PkiError } from '../src/index.js'
import { cli, tempDir, usageError } from './cli-harness.js'

const DAY = 86_400_000

async function caDirectory (t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t)
  const init = await cli('init', '--dir', dir)
  if (init.code !== EXIT.ok) throw new Error(init.stderr)
  return dir
}

async function validity (file: string): Promise<{ notBefore: string, notAfter: string }> {
  const cert = new X509Certificate(await readFile(file))
  return { notBefore: new Date(cert.validFrom).toISOString(), notAfter: new Date(cert.validTo).toISOString() }
}

t.test('issue --not-before and --not-after in the past make a certificate with exactly those dates', async t => {
  const dir = await caDirectory(t)
  const result = await cli('issue', 'expired', '--dir', dir, '--client', '--not-before', '2019-06-01T12:30:15Z', '--not-after', '2020-01-01T00:00:00Z')
  t.equal(result.code, EXIT.ok, result.stderr)
  const serial = new X509Certificate(await readFile(join(dir, 'expired.pem'))).serialNumber
  t.equal(result.stdout.split('\n')[0], `issued expired: serial ${serial}, valid from 2019-06-01T12:30:15Z until 2020-01-01T00:00:00Z (already expired)`)
  t.same(await validity(join(dir, 'expired.pem')), { notBefore: '2019-06-01T12:30:15.000Z', notAfter: '2020-01-01T00:00:00.000Z' })
})

t.test('--not-after alone in the past makes an expired certificate that began 90 days before it', async t => {
  const dir = await caDirectory(t)
  const result = await cli('issue', 'old', '--dir', dir, '--not-after', '2020-01-01T00:00:00Z')
  t.equal(result.code, EXIT.ok, result.stderr)
  t.match(result.stdout, /, valid from 2019-10-03T00:00:00Z until 2020-01-01T00:00:00Z \(already expired\)\n/)
  t.same(await validity(join(dir, 'old.pem')), { notBefore: '2019-10-03T00:00:00.000Z', notAfter: '2020-01-01T00:00:00.000Z' })
})

t.test('--days counts from --not-before; a future start makes a certificate not yet valid', async t => {
  const dir = await caDirectory(t)
  const result = await cli('issue', 'later', '--dir', dir, '--not-before', '2030-01-01', '--days', '10')
  t.equal(result.code, EXIT.ok, result.stderr)
  t.match(result.stdout, /, valid from 2030-01-01T00:00:00Z until 2030-01-11T00:00:00Z \(not yet valid\)\n/)
  t.same(await validity(join(dir, 'later.pem')), { notBefore: '2030-01-01T00:00:00.000Z', notAfter: '2030-01-11T00:00:00.000Z' })

  t.equal((await cli('issue', 'default', '--dir', dir, '--not-before', '2030-01-01')).code, EXIT.ok)
  t.same(await validity(join(dir, 'default.pem')), { notBefore: '2030-01-01T00:00:00.000Z', notAfter: '2030-04-01T00:00:00.000Z' }, '90 days by default')
})

t.test('--not-after alone in the future keeps the usual start, five minutes ago', async t => {
  const dir = await caDirectory(t)
  const before = Date.now()
  const result = await cli('issue', 'soon', '--dir', dir, '--not-after', '2099-12-31T23:59:59Z')
  const after = Date.now()
  t.equal(result.code, EXIT.ok, result.stderr)
  t.notMatch(result.stdout, /expired|not yet valid/)
  const { notBefore, notAfter } = await validity(join(dir, 'soon.pem'))
  t.equal(notAfter, '2099-12-31T23:59:59.000Z')
  const start = Date.parse(notBefore) + 5 * 60_000 // whole seconds
  t.ok(start >= before - 1000 && start <= after, `starts five minutes ago (${notBefore})`)
})

t.test('dates with an offset are converted to UTC; a day alone is midnight UTC', async t => {
  const dir = await caDirectory(t)
  t.equal((await cli('issue', 'zoned', '--dir', dir, '--not-before', '2019-01-01', '--not-after', '2020-01-01T00:00:00+02:00')).code, EXIT.ok)
  t.same(await validity(join(dir, 'zoned.pem')), { notBefore: '2019-01-01T00:00:00.000Z', notAfter: '2019-12-31T22:00:00.000Z' })
  t.equal((await cli('issue', 'west', '--dir', dir, '--not-before', '2019-01-01t10:00z', '--not-after', '2019-01-01T10:00-05:30')).code, EXIT.ok)
  t.same(await validity(join(dir, 'west.pem')), { notBefore: '2019-01-01T10:00:00.000Z', notAfter: '2019-01-01T15:30:00.000Z' })
})

t.test('a wrong date or a contradiction is one line and exit 2, and writes nothing', async t => {
  const dir = await caDirectory(t)
  const examples = 'such as 2020-01-01, 2020-01-01T12:00:00Z or 2020-01-01T14:00:00+02:00'
  const cases: Array<[string[], string]> = [
    [['--not-before', 'yesterday'], `--not-before "yesterday" is not an ISO 8601 date (${examples})`],
    [['--not-after', '01/02/2020'], `--not-after "01/02/2020" is not an ISO 8601 date (${examples})`],
    [['--not-after', '2020-01-01T00:00:00.5Z'], `--not-after "2020-01-01T00:00:00.5Z" is not an ISO 8601 date (${examples})`],
    [['--not-before', '2021-02-29'], '--not-before "2021-02-29" is not a real date and time'],
    [['--not-before', '2020-01-01T24:00:00Z'], '--not-before "2020-01-01T24:00:00Z" is not a real date and time'],
    [['--not-before', '2020-01-01T12:00:00+02:60'], '--not-before "2020-01-01T12:00:00+02:60" is not a real date and time'],
    [['--not-before', '2020-01-01T12:00:00'], '--not-before "2020-01-01T12:00:00" has no time zone: add Z for UTC or an offset such as +02:00'],
    [['--not-before', '1949-12-31'], '--not-before "1949-12-31" is outside the years a certificate made here can hold (1950 to 9999)'],
    [['--not-before', '1950-01-01T00:30:00+01:00'], '--not-before "1950-01-01T00:30:00+01:00" is outside the years a certificate made here can hold (1950 to 9999)'],
    [['--not-before', '2021-01-01', '--not-after', '2020-01-01'], '--not-after 2020-01-01T00:00:00Z must be later than --not-before 2021-01-01T00:00:00Z'],
    [['--not-before', '2020-01-01T02:00:00+02:00', '--not-after', '2020-01-01'], '--not-after 2020-01-01T00:00:00Z must be later than --not-before 2020-01-01T00:00:00Z'],
    [['--days', '30', '--not-after', '2020-01-01'], 'give --not-after or --days, not both (--days counts from --not-before, or from now)'],
    [['--not-after'], '--not-after needs a value: --not-after DATE'],
    [['--not-before', '2020-01-01', '--not-before', '2021-01-01'], '--not-before is given twice; it takes one value'],
    [['--not-befor', '2020-01-01'], 'unknown option --not-befor (did you mean --not-before?)']
  ]
  for (const [flags, message] of cases) {
    const result = await cli('issue', 'bad', '--dir', dir, ...flags)
    t.same(result, { code: EXIT.usage, stdout: '', stderr: usageError('issue', message) }, flags.join(' '))
  }
  t.notOk((await readdir(dir)).some(file => file.startsWith('bad')), 'no certificate was written')
})

t.test('the validity flags are refused with the ERR_MTLS_PKI_INVALID_OPTION code', async t => {
  const refused = (fn: () => unknown): unknown => { try { fn() } catch (err) { return err } }
  for (const fn of [
    () => parseIsoDate('--not-before', 'soon'),
    () => validityOptions({ notBefore: '2021-01-01', notAfter: '2020-01-01' }, 90),
    () => validityOptions({ notAfter: '2020-01-01', days: 1 }, 90)
  ]) {
    const err = refused(fn)
    t.ok(err instanceof PkiError)
    t.equal((err as PkiError).code, 'ERR_MTLS_PKI_INVALID_OPTION')
  }
  t.same(validityOptions({}, 90), {}, 'no flags: the API defaults')
  t.same(validityOptions({ days: 3 }, 90), { days: 3 })
  const now = Date.parse('2025-01-01T00:00:00Z')
  t.same(validityOptions({ notAfter: '2025-01-01' }, 10, now), { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now) }, 'a --not-after of exactly now is in the past')
  // The start it derives never falls before 1950, where the error would name a --not-before nobody gave.
  t.same(validityOptions({ notAfter: '1950-03-01' }, 90), { notBefore: new Date('1950-01-01T00:00:00Z'), notAfter: new Date('1950-03-01T00:00:00Z') })
  t.throws(() => validityOptions({ notAfter: '1950-01-01' }, 90), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: '--not-after 1950-01-01T00:00:00Z must be later than the start of 1950' })
})
