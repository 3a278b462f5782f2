// What every results file of the bench shares: the machine and run it was measured on, and how it is written out.
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'

export const round2 = value => value === null ? null : Math.round(value * 100) / 100

/** A spread (`{ min, median, max }`) with each figure rounded by `by`; `null` stays `null`. */
export const roundSpread = (summary, by) => summary === null ? null : { min: by(summary.min), median: by(summary.median), max: by(summary.max) }

/**
 * The machine and run: when, which CPU and Node, how the processes were pinned (`pinned`, left out when not given),
 * the mode and plan, how long it took, the load averages (1, 5 and 15 minutes) at the start and at the end (above the
 * core count, other jobs competed), and the calibration measured in the same run.
 */
export function machineOf ({ startedAt, mode, plan, pinned, calibration }) {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.versions.node,
    openssl: process.versions.openssl,
    ...(pinned === undefined ? {} : { pinned }),
    mode,
    plan,
    durationS: Math.round((Date.now() - startedAt.time) / 1000),
    loadAverage: { start: startedAt.loadAverage.map(round2), end: loadavg().map(round2) },
    calibration
  }
}

/** Writes `<outName>.json`, `<outName>.md` and each `[suffix, content]` of `extra` into `outDir`, and prints the markdown and where they went. */
export async function writeResults (outDir, outName, results, markdown, extra = []) {
  await mkdir(outDir, { recursive: true })
  await writeFile(join(outDir, `${outName}.json`), JSON.stringify(results, null, 2) + '\n')
  await writeFile(join(outDir, `${outName}.md`), markdown)
  for (const [suffix, content] of extra) await writeFile(join(outDir, `${outName}.${suffix}`), content)
  console.log(markdown)
  console.log(`results in ${outDir}: ${[`${outName}.json`, `${outName}.md`, ...extra.map(([suffix]) => `${outName}.${suffix}`)].join(', ')}`)
}
