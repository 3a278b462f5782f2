// The primary: forks the workers (one per core unless WORKERS says), restarts one that dies, and answers 'status'
// (from its parent over IPC, or on SIGUSR2 in the log) with each worker's material and last reload, so a worker
// still serving old material after a failed reload is visible. Run `node src/cluster.js [dir]`; without a dir it
// makes a development PKI in a temporary folder first.
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startWorker } from './worker.js'
import { makeFiles } from './files.js'

if (cluster.isPrimary) {
  const dir = process.argv[2] ?? (await makeFiles()).dir
  const count = Number(process.env.WORKERS ?? availableParallelism())
  const port = Number(process.env.PORT ?? 0)
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: [dir], env: { ...process.env, PORT: String(port) } })
  let stopping = false
  // Workers that listen (and so answer 'status'); one still starting is not asked.
  const serving = new Set()
  const workers = () => [...serving].filter(worker => worker.isConnected())
  let started = false
  cluster.on('listening', (worker, address) => {
    serving.add(worker)
    if (started || serving.size < count) return
    started = true
    console.log(`listening on https://127.0.0.1:${address.port} with ${count} workers (PKI in ${dir})`)
    process.send?.({ type: 'listening', port: address.port, dir, workers: count })
  })
  // A worker that dies is replaced: it reads the files as they are now, and the ticket keys let clients resume on it.
  cluster.on('exit', (worker, code, signal) => {
    serving.delete(worker)
    if (stopping) return
    console.error(`worker ${worker.id} exited (${signal ?? code}); starting another`)
    cluster.fork()
  })
  let asked = 0
  const statusOfAll = async () => {
    const id = ++asked
    // A worker that dies before it answers is left out, not waited for.
    const replies = await Promise.all(workers().map(worker => new Promise(resolve => {
      const done = reply => {
        worker.off('message', onMessage)
        worker.off('exit', onExit)
        resolve(reply)
      }
      const onMessage = message => { if (message?.type === 'status' && message.id === id) done(message) }
      const onExit = () => { done(null) }
      worker.on('message', onMessage)
      worker.on('exit', onExit)
      worker.send({ type: 'status', id }, error => { if (error) done(null) })
    })))
    const answered = replies.filter(reply => reply !== null)
    const fingerprints = new Set(answered.map(reply => reply.fingerprint256))
    return { workers: answered.sort((a, b) => a.worker - b.worker), consistent: fingerprints.size === 1 }
  }
  process.on('message', async message => {
    if (message?.type === 'status') process.send({ type: 'status', id: message.id, ...await statusOfAll() })
    if (message?.type === 'kill-worker') workers().find(worker => worker.id === message.worker)?.process.kill()
  })
  process.on('SIGUSR2', () => { statusOfAll().then(status => { console.log(JSON.stringify(status)) }, () => {}) })
  const stop = () => {
    stopping = true
    for (const worker of workers()) worker.process.kill()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
  for (let i = 0; i < count; i++) cluster.fork()
} else {
  await startWorker({ dir: process.argv[2], port: Number(process.env.PORT ?? 0) })
}
