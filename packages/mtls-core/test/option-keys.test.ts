import t from 'tap'
import { unknownOption } from '../src/index.js'

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
