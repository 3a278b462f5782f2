// How long a full test set (createTestPki) and a single leaf take to make. Run `pnpm bench` after `pnpm build`.
import { createRootCa, createTestPki } from '../dist/index.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 20)

async function measure (label, fn) {
  for (let i = 0; i < 3; i++) await fn() // warm-up
  const times = []
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint()
    await fn()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  const at = q => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1)
  console.log(`| ${label.padEnd(34)} | ${at(0.5).padStart(8)} | ${at(0.9).padStart(8)} | ${times[0].toFixed(1).padStart(8)} |`)
}

console.log(`mtls-pki on Node ${process.version}, ${RUNS} runs each (milliseconds)\n`)
console.log('| what                               |   median |      p90 |      min |')
console.log('| ---------------------------------- | -------: | -------: | -------: |')
await measure('createTestPki() (P-256, 17 certs)', () => createTestPki())
const ca = await (await createRootCa()).createIntermediate()
for (const keyType of ['p256', 'p384', 'ed25519']) {
  await measure(`issue one ${keyType} leaf`, () => ca.issue({ keyType, spiffeId: 'spiffe://example.org/bench' }))
}
