// Caddy in front of the service, with the configs of examples/caddy: base64 DER in X-SSL-Client-Cert
// ({http.request.tls.client.certificate_der_base64}).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { hangLimit, until } from './hang-limit.js'
import { findProxy } from './proxy-binaries.js'
import { spawnProxy } from './proxy-process.js'
import { proxySuite } from './proxy-suite.js'

const run = promisify(execFile)
const example = name => fileURLToPath(new URL(`../../caddy/${name}`, import.meta.url))
const found = findProxy('caddy')
// .taprc's limit for a proxy's file, scaled.
t.setTimeout(hangLimit(60_000))

t.test('caddy', { skip: found.skip ?? false }, async t => {
  await proxySuite(t, {
    name: 'caddy',
    templates: { mtls: example('Caddyfile'), http: example('Caddyfile.plain-upstream') },
    configName: 'Caddyfile',
    extraPorts: ['ADMIN_PORT'],
    formats: [{ label: 'X-SSL-Client-Cert, base64-der', forwarded: { header: 'x-ssl-client-cert', format: 'base64-der' } }],
    // client_auth verify_if_given: a certificate that does not verify ends the handshake.
    refusal: 'handshake',
    // Caddy 2.6 checks no CRL: the revoked certificate gets through, and the service refuses it.
    checksCrl: false,
    reloadHow: 'caddy reload (the admin API; the listener is kept, the old server shut down gracefully)',
    // Go's http.Server.Shutdown closes idle keep-alive connections at once.
    reloadClosesIdleConnections: true,
    async start ({ config, runDir, values, ready }) {
      // Caddy keeps its state (autosave.json, storage) under these: all in the run's directory.
      const env = { HOME: runDir, XDG_DATA_HOME: join(runDir, 'data'), XDG_CONFIG_HOME: join(runDir, 'config') }
      const args = ['--config', config, '--adapter', 'caddyfile']
      const proc = await spawnProxy(found.path, ['run', ...args], { env, ready })
      return {
        stop: proc.stop,
        output: proc.output,
        async reload () {
          const loaded = () => proc.output().split('"msg":"load complete"').length - 1
          const before = loaded()
          // --force: reload even though the file did not change.
          await run(found.path, ['reload', ...args, '--address', `127.0.0.1:${values.ADMIN_PORT}`, '--force'], { env: { ...process.env, ...env }, timeout: hangLimit(30_000) })
          await until(() => loaded() > before, () => `Caddy to log "load complete" after caddy reload exited 0\n${proc.output()}`)
          return 'caddy reload: "load complete", the new server took the listener'
        }
      }
    }
  })
})
