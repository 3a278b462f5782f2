// A bounded load: `loops` concurrent request loops (keep-alive, as a service calling another does), with `action`
// (a proxy reload, a certificate rotation) started `actionAtMs` in. The loops go on for `durationMs`, and after the
// action until `enough(result)` holds (at least `minAfterMs`, at most `maxAfterMs`): on a busy machine requests are
// slow, and a check that the action was exercised must not depend on how fast. Counts every answer that was not a
// 200 and every request that failed, and how many requests succeeded after the action had completed.
//
// One retry, counted apart: a GET whose connection closed before any byte of an answer came, the case HTTP/1.1
// lets a client retry an idempotent request (RFC 9112, 9.3.1). A proxy that closes an idle keep-alive connection
// while reloading (nginx, Caddy) can meet a request the client is writing at that instant; nothing was processed.
// Any other error, a second failure, or an answer other than 200 is a lost request.
import { request } from 'undici'

const CLOSED_BEFORE_ANSWER = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const SAMPLES = 10

export async function loadDuring ({ url, dispatcher, headers = {}, loops = 4, durationMs = 1500, actionAtMs = 500, action, enough = () => true, minAfterMs = 300, maxAfterMs = 4000 }) {
  const started = Date.now()
  const result = { ok: 0, failed: 0, retried: 0, samples: [], retrySamples: [], okAfterAction: 0, actionMs: null, action: null }
  let actionDoneAt = null
  let actionError = null
  const going = () => {
    const now = Date.now()
    if (actionDoneAt === null) return true
    if (now >= actionDoneAt + maxAfterMs) return false
    return now < started + durationMs || now < actionDoneAt + minAfterMs || !enough(result)
  }
  const attempt = async () => {
    const response = await request(url, { dispatcher, headers, headersTimeout: 5000, bodyTimeout: 5000 })
    return { status: response.statusCode, body: await response.body.text() }
  }
  const loop = async () => {
    // Never stop before the action is over: requests must go on after it, however long it took.
    while (going()) {
      const sentAt = Date.now()
      try {
        let answer
        try {
          answer = await attempt()
        } catch (err) {
          if (!CLOSED_BEFORE_ANSWER.has(err.code)) throw err
          result.retried++
          if (result.retrySamples.length < SAMPLES) result.retrySamples.push(`${err.code}: ${err.message}`)
          answer = await attempt()
        }
        if (answer.status === 200) {
          result.ok++
          if (actionDoneAt !== null && sentAt > actionDoneAt) result.okAfterAction++
          continue
        }
        result.failed++
        if (result.samples.length < SAMPLES) result.samples.push(`${answer.status} ${answer.body.slice(0, 200)}`)
      } catch (err) {
        result.failed++
        if (result.samples.length < SAMPLES) result.samples.push(`${err.code ?? err.name}: ${err.message}`)
      }
    }
  }
  const acting = (async () => {
    await new Promise(resolve => setTimeout(resolve, actionAtMs))
    const actionStarted = Date.now()
    try {
      result.action = await action()
    } catch (err) {
      actionError = err
    } finally {
      actionDoneAt = Date.now()
      result.actionMs = actionDoneAt - actionStarted
    }
  })()
  await Promise.all([...Array.from({ length: loops }, loop), acting])
  if (actionError !== null) throw actionError
  return result
}
