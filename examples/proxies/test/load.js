// A bounded load: `loops` concurrent request loops (keep-alive, as a service calling another does), with `action`
// (a proxy reload, a certificate rotation) started once `beforeAction` requests have been answered, so that it meets
// a load already flowing. The loops go on through the action and after it until `enough(result)` holds: counts, not
// durations, so that a busy machine makes the run slower and nothing else. Only a run where enough never comes is
// ended, after a hang limit. Counts every answer that was not a 200 and every request that failed, and how many
// requests succeeded after the action had completed.
//
// One retry, counted apart: a GET whose connection closed before any byte of an answer came, the case HTTP/1.1
// lets a client retry an idempotent request (RFC 9112, 9.3.1). A proxy that closes an idle keep-alive connection
// while reloading (nginx, Caddy) can meet a request the client is writing at that instant; nothing was processed.
// Any other error, a second failure, or an answer other than 200 is a lost request.
import { request } from 'undici'
import { hangLimit } from './hang-limit.js'

const CLOSED_BEFORE_ANSWER = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const SAMPLES = 10
/** What one request may take before it counts as lost: a hang limit. */
export const REQUEST_LIMIT_MS = hangLimit(30_000)

export async function loadDuring ({ url, dispatcher, headers = {}, loops = 4, beforeAction = 20, action, enough = () => true, afterLimitMs = 30_000 }) {
  const result = { ok: 0, failed: 0, retried: 0, samples: [], retrySamples: [], okAfterAction: 0, actionMs: null, action: null }
  let actionDoneAt = null
  let giveUpAt = null
  let actionError = null
  let startAction
  const flowing = new Promise(resolve => { startAction = resolve })
  // Never stop before the action is over: requests must go on after it, however long it took.
  const going = () => actionDoneAt === null || (!enough(result) && Date.now() < giveUpAt)
  const attempt = async () => {
    const response = await request(url, { dispatcher, headers, headersTimeout: REQUEST_LIMIT_MS, bodyTimeout: REQUEST_LIMIT_MS })
    return { status: response.statusCode, body: await response.body.text() }
  }
  const loop = async () => {
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
        } else {
          result.failed++
          if (result.samples.length < SAMPLES) result.samples.push(`${answer.status} ${answer.body.slice(0, 200)}`)
        }
      } catch (err) {
        result.failed++
        if (result.samples.length < SAMPLES) result.samples.push(`${err.code ?? err.name}: ${err.message}`)
      }
      if (result.ok + result.failed >= beforeAction) startAction()
    }
  }
  const acting = (async () => {
    await flowing
    const actionStarted = Date.now()
    try {
      result.action = await action()
    } catch (err) {
      actionError = err
    } finally {
      actionDoneAt = Date.now()
      giveUpAt = actionDoneAt + hangLimit(afterLimitMs)
      result.actionMs = actionDoneAt - actionStarted
    }
  })()
  await Promise.all([...Array.from({ length: loops }, loop), acting])
  if (actionError !== null) throw actionError
  return result
}
