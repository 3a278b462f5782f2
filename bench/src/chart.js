// The results as an SVG: one panel per metric (server CPU µs per keep-alive request, per full handshake,
// per resumed handshake), bars per scenario and Node version (the median, a whisker from the lowest round to the
// highest), the node-mtls floor as a dashed line and the proxy scenarios (nginx, HAProxy) in their own colour. Each panel has its own scale: the metrics differ by
// two orders of magnitude.
const escape = text => String(text).replace(/[<>&"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c])

const PANELS = [
  { metric: 'keepAlive', title: 'server CPU µs per keep-alive request' },
  { metric: 'fullHandshake', title: 'server CPU µs per new connection (full handshake + request)' },
  { metric: 'resumedHandshake', title: 'server CPU µs per resumed connection (+ request)' }
]

const isProxy = row => /^(nginx|haproxy)-/.test(row.scenario)

export function chartSvg (rows, machine) {
  // A row with a Node server (a proxy's app included) is labelled with its Node major when several ran.
  const nodes = [...new Set(rows.filter(row => row.node !== null).map(row => row.node))]
  const label = row => nodes.length > 1 && row.node !== null ? `${row.scenario} (Node ${row.node.split('.')[0]})` : row.scenario
  const width = 900
  const left = 290 // room for the longest label, "haproxy-mtls->fastify-identity (Node 24)"
  const barWidth = width - left - 90
  const barHeight = 14
  const panelHeight = 30 + rows.length * (barHeight + 4)
  const height = 60 + PANELS.length * (panelHeight + 20) + 34
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="15" font-weight="bold">Server CPU per operation: HTTP, TLS, mTLS, proxies (${escape(machine.date.slice(0, 10))}, ${escape(machine.mode)} run)</text>`,
    `<text x="10" y="40" fill="#555">${escape(`${machine.cpu}, ${machine.cores} cores, ${machine.pinned}; fewer µs is better`)}</text>`
  ]
  PANELS.forEach((panel, p) => {
    const top = 60 + p * (panelHeight + 20)
    const values = rows.map(row => row.serverCpuUs[panel.metric])
    const spreads = rows.map(row => row.serverCpuUsSpread?.[panel.metric] ?? null)
    const max = Math.max(...values.filter(value => value !== null), ...spreads.map(range => range?.max ?? 0), 1)
    parts.push(`<text x="10" y="${top + 14}" font-weight="bold">${escape(panel.title)}</text>`)
    rows.forEach((row, r) => {
      const value = values[r]
      const y = top + 24 + r * (barHeight + 4)
      const w = value === null ? 0 : Math.max(1, Math.round(barWidth * value / max))
      const color = isProxy(row) ? '#8a8a8a' : row.scenario === 'node-mtls' ? '#3d9a50' : '#2f6db5'
      parts.push(`<text x="10" y="${y + 11}">${escape(label(row))}</text>`)
      parts.push(`<rect x="${left}" y="${y}" width="${w}" height="${barHeight}" fill="${color}"/>`)
      const range = spreads[r]
      let end = left + w
      if (range !== null && range.max > range.min) {
        const [from, to] = [range.min, range.max].map(bound => left + Math.round(barWidth * bound / max))
        parts.push(`<line x1="${from}" y1="${y + barHeight / 2}" x2="${to}" y2="${y + barHeight / 2}" stroke="#222"/>`)
        end = Math.max(end, to)
      }
      parts.push(`<text x="${end + 6}" y="${y + 11}">${value === null ? 'n/a' : Math.round(value).toLocaleString('en-US')}</text>`)
    })
    // The floor any Node server pays with the same TLS settings: node:https of the first Node version.
    const floor = rows.find(row => row.scenario === 'node-mtls')?.serverCpuUs[panel.metric]
    if (floor !== null && floor !== undefined) {
      const x = left + Math.round(barWidth * floor / max)
      parts.push(`<line x1="${x}" y1="${top + 20}" x2="${x}" y2="${top + panelHeight}" stroke="#3d9a50" stroke-dasharray="4 3"/>`)
    }
  })
  parts.push(`<text x="10" y="${height - 24}" fill="#555">Green: node:https with the same TLS options (dashed: its value, the floor). Grey: a proxy terminating mTLS (with the Node app behind it, if any).</text>`)
  parts.push(`<text x="10" y="${height - 10}" fill="#555">Bars: the median of the rounds; whiskers: the lowest to the highest round. Each panel has its own scale.</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
