import t from 'tap'
import { snapshotOptions, unknownOption } from '../src/internal.js'

const known = ['certFile', 'keyFile', 'caFile', 'server', 'verifyHostname'] as const

t.test('every known key passes', async t => {
  t.equal(unknownOption({ certFile: 'a', server: 'b' }, known, 'createMtlsAgent'), null)
  t.equal(unknownOption({}, known, 'createMtlsAgent'), null)
})

t.test('an unknown key is named with where it was given and the closest known key', async t => {
  t.equal(unknownOption({ certFile: 'a', sever: 'x' }, known, 'createMtlsAgent'),
    'createMtlsAgent: unknown option "sever" (did you mean "server"?); known options: certFile, keyFile, caFile, server, verifyHostname')
  t.match(unknownOption({ cretFile: 'a' }, known, 'x'), /"cretFile" \(did you mean "certFile"\?\)/, 'a transposition is one edit')
  t.match(unknownOption({ verifyhostname: false }, known, 'x'), /did you mean "verifyHostname"/, 'case does not count')
  t.match(unknownOption({ caFiles: 'a' }, known, 'x'), /did you mean "caFile"/)
})

t.test('a key like nothing known gets no suggestion', async t => {
  const message = unknownOption({ zzzzzzzz: 1 }, known, 'where')
  t.equal(message, 'where: unknown option "zzzzzzzz"; known options: certFile, keyFile, caFile, server, verifyHostname')
})

t.test('objects built on others: prototype keys count, Object.prototype never does', async t => {
  class Config {
    certFile = 'a.pem'
    get sever (): string { return 'spiffe://x/y' }
  }
  t.match(unknownOption(new Config(), known, 'createMtlsAgent'), /unknown option "sever" \(did you mean "server"\?\)/, 'a misspelt getter of a class')
  const layered = Object.assign(Object.create({ caFile: 'ca.pem' }), { certFile: 'a.pem' }) as object
  t.same({ ...snapshotOptions(layered) }, { certFile: 'a.pem', caFile: 'ca.pem' }, 'defaults layered with Object.create are read')
  const proto = Object.prototype as Record<string, unknown>
  proto.verifyHostname = false
  try {
    const snapshot = snapshotOptions({ certFile: 'a.pem' }) as Record<string, unknown>
    t.equal(snapshot.verifyHostname, undefined, 'a polluted Object.prototype adds nothing')
    t.equal(Object.getPrototypeOf(snapshot), null)
    t.equal(unknownOption({ certFile: 'a' }, known, 'x'), null)
  } finally {
    delete proto.verifyHostname
  }
  class WithMethod { server (): boolean { return true } }
  t.equal(typeof (snapshotOptions(new WithMethod()) as { server?: unknown }).server, 'function', 'a method is an option like any other')
})
