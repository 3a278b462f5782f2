import { PkiError } from './errors.js'
import { CERTIFICATE_YEARS, DAY_MS, type ValidityOptions } from './validity.js'

/** What `issue --not-before`, `--not-after` and `--days` were given, as text and number. */
export interface ValidityArguments {
  readonly notBefore?: string | undefined
  readonly notAfter?: string | undefined
  readonly days?: number | undefined
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2}))?([Zz]|[+-]\d{2}:\d{2})?)?$/
const EXAMPLES = 'such as 2020-01-01, 2020-01-01T12:00:00Z or 2020-01-01T14:00:00+02:00'

/**
 * Reads an ISO 8601 date from the command line: a day (midnight UTC), or a day and a time with `Z` or an offset.
 * A time without a zone is refused rather than guessed, since a certificate's dates are UTC.
 */
export function parseIsoDate (flag: string, text: string): Date {
  const match = ISO_DATE.exec(text)
  if (match === null) throw invalid(`${flag} ${JSON.stringify(text)} is not an ISO 8601 date (${EXAMPLES})`)
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(part => Number(part ?? 0)) as [number, number, number, number, number, number]
  const zone = match[7]
  if (match[4] !== undefined && zone === undefined) {
    throw invalid(`${flag} ${JSON.stringify(text)} has no time zone: add Z for UTC or an offset such as +02:00`)
  }
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second)
  const offsetHours = Number(zone?.slice(1, 3) ?? 0)
  const offsetMinutes = Number(zone?.slice(4, 6) ?? 0)
  // Date would roll 2021-02-29 over to March 1st and 24:00 to the next day; neither is what was meant.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
    throw invalid(`${flag} ${JSON.stringify(text)} is not a real date and time`)
  }
  const sign = zone?.startsWith('-') === true ? -1 : 1
  const utc = new Date(date.getTime() - sign * (offsetHours * 60 + offsetMinutes) * 60_000)
  if (utc.getUTCFullYear() < CERTIFICATE_YEARS.first || utc.getUTCFullYear() > CERTIFICATE_YEARS.last) {
    throw invalid(`${flag} ${JSON.stringify(text)} is outside the years a certificate made here can hold (${CERTIFICATE_YEARS.first} to ${CERTIFICATE_YEARS.last})`)
  }
  return utc
}

/**
 * Maps `issue`'s validity flags to the API's ValidityOptions, with the same rules: `--days` counts from
 * `--not-before` (or from now), and `--days` with `--not-after` is refused. One addition: `--not-after`
 * alone in the past starts the certificate `defaultDays` before it, so an expired certificate needs one flag.
 */
export function validityOptions (args: ValidityArguments, defaultDays: number, now = Date.now()): ValidityOptions {
  const notBefore = args.notBefore === undefined ? undefined : parseIsoDate('--not-before', args.notBefore)
  const notAfter = args.notAfter === undefined ? undefined : parseIsoDate('--not-after', args.notAfter)
  if (notAfter !== undefined && args.days !== undefined) {
    throw invalid('give --not-after or --days, not both (--days counts from --not-before, or from now)')
  }
  if (notBefore !== undefined && notAfter !== undefined && notAfter.getTime() <= notBefore.getTime()) {
    throw invalid(`--not-after ${isoSeconds(notAfter)} must be later than --not-before ${isoSeconds(notBefore)}`)
  }
  if (notAfter !== undefined && notBefore === undefined && notAfter.getTime() <= now) {
    // Never before the first year a certificate can hold: an error would name a --not-before nobody gave.
    const earliest = Date.UTC(CERTIFICATE_YEARS.first, 0, 1)
    if (notAfter.getTime() <= earliest) throw invalid(`--not-after ${isoSeconds(notAfter)} must be later than the start of ${CERTIFICATE_YEARS.first}`)
    return { notBefore: new Date(Math.max(notAfter.getTime() - defaultDays * DAY_MS, earliest)), notAfter }
  }
  return {
    ...(notBefore === undefined ? {} : { notBefore }),
    ...(notAfter === undefined ? {} : { notAfter }),
    ...(args.days === undefined ? {} : { days: args.days })
  }
}

/** `2020-01-01T00:00:00Z`: what a certificate can hold, without the milliseconds it cannot. */
export function isoSeconds (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function invalid (message: string): PkiError {
  return new PkiError('ERR_MTLS_PKI_INVALID_OPTION', message)
}
