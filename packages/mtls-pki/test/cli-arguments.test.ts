import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT } from '../src/cli.js'
import { cli, tempDir, usageError } from './cli-harness.js'

t.test('a wrong argument prints what is wrong and where the usage is, in two lines, and exits 2', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, 0)
  const cases: Array<[string[], string, string]> = [
    [['issue', 'x', '--dir', dir, '--dyas', '3'], 'issue', 'unknown option --dyas (did you mean --days?)'],
    [['issue', 'x', '--dir', dir, '--sever'], 'issue', 'unknown option --sever (did you mean --server?)'],
    [['issue', 'x', '--dir', dir, '--colour'], 'issue', 'unknown option --colour'],
    [['issue', 'x', '--dir', dir, '-q'], 'issue', 'unknown option -q'],
    [['issue', 'x', '-dir', dir], 'issue', 'unknown option -dir (did you mean --dir?)'],
    [['issue', 'x', '--dir', dir, '--days'], 'issue', '--days needs a value: --days N'],
    [['issue', 'x', '--dir', dir, '--days', '-1'], 'issue', '--days needs a value: --days N; got the option "-1" (write --days=-1 if that is the value)'],
    [['issue', 'x', '--dir', dir, '--days=-1'], 'issue', '--days must be a positive number; got "-1"'],
    [['issue', 'x', '--dir', dir, '--days', 'ten'], 'issue', '--days must be a positive number; got "ten"'],
    [['issue', 'x', '--dir', dir, '--days', '0'], 'issue', '--days must be a positive number; got "0"'],
    [['issue', 'x', '--dir', dir, '--client=yes'], 'issue', '--client takes no value; got "yes"'],
    [['issue', 'x', '--dir', dir, '--spiffe', 'spiffe://a/b', '--spiffe', 'spiffe://a/c'], 'issue', '--spiffe is given twice; it takes one value'],
    [['issue', 'x', '--dir', dir, '--spiffe', 'https://x'], 'issue', '--spiffe must start with spiffe://; got "https://x"'],
    [['issue', 'x', '--dir', dir, '--ip', 'localhost'], 'issue', '--ip "localhost" is not an IPv4 or IPv6 address (use --dns for a host name)'],
    [['issue', 'x', '--dir', dir, '--ip', '10.0.0.256'], 'issue', '--ip "10.0.0.256" is not an IPv4 or IPv6 address'],
    [['issue', 'x', '--dir', dir, '--key-type', 'dsa'], 'issue', '--key-type must be one of p256, p384, ed25519, rsa2048, rsa3072; got "dsa"'],
    [['issue', 'a/b', '--dir', dir], 'issue', 'NAME must be a plain file name (letters, digits, \'.\', \'_\', \'-\'); got "a/b"'],
    [['issue', '--dir', dir], 'issue', 'missing NAME'],
    [['issue', 'x'], 'issue', '--dir is required'],
    [['issue', 'x', '--dir', ''], 'issue', '--dir must not be empty'],
    [['init', '--dir', dir, 'extra'], 'init', 'unexpected argument "extra"'],
    [['init', '--dir', dir, '--forse'], 'init', 'unknown option --forse (did you mean --force?)'],
    [['revoke', '--dir', dir], 'revoke', 'missing SERIAL or CERT_FILE'],
    [['revoke', ':', '--dir', dir], 'revoke', 'serial number must be hexadecimal; got ""'],
    [['revoke', '0A', '--dir', dir, '--reason', 'keycompromise'], 'revoke',
      '--reason "keycompromise" is not a revocation reason (did you mean keyCompromise?); one of unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise'],
    [['revoke', '0A', '--dir', dir, '--reason', 'boredom'], 'revoke',
      '--reason "boredom" is not a revocation reason; one of unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise'],
    [['crl', '--dir', dir, '--out'], 'crl', '--out needs a value: --out FILE'],
    [['inspect'], 'inspect', 'missing FILE'],
    [['inspect', '--all', 'x.pem'], 'inspect', 'unknown option --all']
  ]
  for (const [argv, command, message] of cases) {
    const result = await cli(...argv)
    t.same(result, { code: EXIT.usage, stdout: '', stderr: usageError(command, message) }, argv.join(' '))
  }
  t.same((await readdir(dir)).sort(), ['ca.pem', 'crl.pem', 'intermediate-key.pem', 'intermediate.pem', 'revoked.json', 'root-key.pem', 'root.pem'], 'no refused command wrote a file')
  t.equal(await readFile(join(dir, 'revoked.json'), 'utf8'), '[]\n', 'no refused revoke recorded anything')
})

t.test('an unknown command or an option before the command points at the main --help', async t => {
  const cases: Array<[string[], string]> = [
    [['isue'], 'unknown command "isue" (did you mean issue?)'],
    [['inspcet', 'x.pem'], 'unknown command "inspcet" (did you mean inspect?)'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['help', 'frobnicate'], 'unknown command "frobnicate"'],
    [['--dir', 'pki', 'issue'], 'unknown option --dir (the command comes first: mtls-pki COMMAND [options])']
  ]
  for (const [argv, message] of cases) {
    t.same(await cli(...argv), { code: EXIT.usage, stdout: '', stderr: usageError(null, message) }, argv.join(' '))
  }
})

t.test('--help shows the usage even when the rest of the line is wrong', async t => {
  const help = await cli('issue', '--help')
  for (const argv of [['issue', '--dyas', '3', '--help'], ['issue', '-h', 'a/b', 'c'], ['help', 'issue']]) {
    t.same(await cli(...argv), help, argv.join(' '))
  }
  t.equal(help.code, EXIT.ok)
  t.same(await cli('help', '--help'), await cli('--help'), 'help --help is the main usage')
})

t.test('with no arguments the main usage goes to stderr with the usage exit code', async t => {
  const result = await cli()
  t.equal(result.code, EXIT.usage)
  t.equal(result.stdout, '')
  t.match(result.stderr, /^mtls-pki: a development certificate authority for mutual TLS\n\nUsage: mtls-pki COMMAND \[options\]\n/)
})

t.test('--version prints the package version', async t => {
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) t.same(await cli(flag), { code: EXIT.ok, stdout: `${version}\n`, stderr: '' }, flag)
})
