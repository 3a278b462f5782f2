// HAProxy in front of the service, with the configs of examples/haproxy: the same verified certificate as RFC 9440
// `Client-Cert: :base64 DER:` and as base64 DER in X-SSL-Client-Cert, each read by the service in its own run.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { hangLimit, until } from './hang-limit.js'
import { findProxy } from './proxy-binaries.js'
import { childPids, spawnProxy } from './proxy-process.js'
import { proxySuite } from './proxy-suite.js'

const example = name => fileURLToPath(new URL(`../../haproxy/${name}`, import.meta.url))
const found = findProxy('haproxy')
// .taprc's limit for a proxy's file, scaled.
t.setTimeout(hangLimit(60_000))

t.test('haproxy', { skip: found.skip ?? false }, async t => {
  await proxySuite(t, {
    name: 'haproxy',
    templates: { mtls: example('haproxy.cfg'), http: example('haproxy-plain-upstream.cfg') },
    configName: 'haproxy.cfg',
    formats: [
      { label: 'Client-Cert, rfc9440 (forwarded: \'rfc9440\')', forwarded: 'rfc9440' },
      { label: 'X-SSL-Client-Cert, base64-der', forwarded: { header: 'x-ssl-client-cert', format: 'base64-der' } }
    ],
    // verify optional: a certificate that does not verify ends the handshake.
    refusal: 'handshake',
    checksCrl: true,
    reloadHow: 'haproxy reload (SIGUSR2 to the master: a new worker, listening sockets handed over)',
    // option idle-close-on-response: an idle connection is closed only after one more answer, with Connection: close.
    reloadClosesIdleConnections: false,
    async start ({ config, runDir, values, ready }) {
      const pidFile = join(runDir, 'haproxy.pid')
      // -db: stay in the foreground; the config's master-worker makes this the master, which -p records.
      const proc = await spawnProxy(found.path, ['-f', config, '-db', '-p', pidFile], { ready })
      return {
        stop: proc.stop,
        output: proc.output,
        async reload () {
          const master = Number((await readFile(pidFile, 'utf8')).trim())
          const before = await childPids(master)
          process.kill(master, 'SIGUSR2')
          // The master re-reads the config and starts a new worker, which takes over the listening sockets. The old
          // one stops listening and leaves once each of its client connections has had a last answer (with
          // Connection: close) or timed out: idle ones from earlier tests may keep it up to `timeout client`.
          let fresh = []
          await until(async () => {
            fresh = (await childPids(master)).filter(worker => !before.includes(worker))
            return fresh.length > 0
          }, () => `a new haproxy worker after the reload\n${proc.output()}`)
          return `worker ${before.join(',')} joined by ${fresh.join(',')}, which took over the listening sockets`
        }
      }
    }
  })
})
