import t from 'tap'
import { calibrate, pairedRatios, resultsName, spread } from '../src/rounds.js'

t.test('a ratio is paired round by round, not a ratio of medians', async t => {
  // A machine twice as slow in round 2: each round's pair still says 1.1, the medians would say otherwise.
  const ratios = pairedRatios([1100, 2200, 1210], [1000, 2000, 1100])
  t.same(ratios.rounds.map(r => Math.round(r * 1000) / 1000), [1.1, 1.1, 1.1])
  t.equal(Math.round(ratios.median * 1000) / 1000, 1.1)
  const spreadOut = pairedRatios([1000, 1300, 900], [1000, 1000, 1000])
  t.same(spreadOut, { rounds: [1, 1.3, 0.9], min: 0.9, median: 1, max: 1.3 })
})

t.test('a round missing either figure, or with no baseline CPU, pairs nothing', async t => {
  t.same(pairedRatios([2, null, 3], [1, 1, 0]), { rounds: [2, null, null], min: 2, median: 2, max: 2 })
  t.equal(pairedRatios([null], [1]), null)
  t.equal(pairedRatios([], []), null)
})

t.test('spread keeps min, median and max of the figures measured', async t => {
  t.same(spread([3, 1, null, 2]), { min: 1, median: 2, max: 3 })
  t.equal(spread([null]), null)
})

t.test('only a full run of every scenario writes latest.*', async t => {
  t.equal(resultsName('full', false), 'latest')
  t.equal(resultsName('full', true), 'partial')
  for (const partial of [false, true]) {
    t.equal(resultsName('quick', partial), 'quick')
    t.equal(resultsName('smoke', partial), 'smoke')
  }
})

t.test('the calibration times real P-256 verifications', async t => {
  t.ok(calibrate(5) > 0)
})
