// A small SVG bar chart of the results: keep-alive requests/s and new connections/s per scenario.
const escape = text => String(text).replace(/[<>&"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c])

export function chartSvg (rows, machine) {
  const series = [
    { key: row => row.keepAlive.requestsPerSecond, label: 'keep-alive req/s', color: '#2f6db5' },
    { key: row => row.fullHandshakesPerSecond, label: 'full handshakes/s', color: '#d9822b' },
    { key: row => row.resumedPerSecond, label: 'resumed connections/s', color: '#3d9a50' }
  ]
  const width = 860
  const rowHeight = 74
  const left = 190
  const barWidth = width - left - 120
  const height = 70 + rows.length * rowHeight + 30
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="15" font-weight="bold">Fastify HTTP vs TLS vs mTLS (${escape(machine.date.slice(0, 10))}, ${escape(machine.mode)} run)</text>`,
    `<text x="10" y="40" fill="#555">${escape(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, OpenSSL ${machine.openssl}`)}</text>`
  ]
  series.forEach((s, i) => parts.push(`<rect x="${left + i * 190}" y="48" width="12" height="12" fill="${s.color}"/><text x="${left + i * 190 + 16}" y="58">${escape(s.label)}</text>`))
  rows.forEach((row, r) => {
    const y = 70 + r * rowHeight
    parts.push(`<text x="10" y="${y + 28}" font-weight="bold">${escape(row.scenario)}</text>`)
    series.forEach((s, i) => {
      const value = s.key(row)
      const max = Math.max(...rows.map(other => s.key(other) ?? 0), 1)
      const w = value === null ? 0 : Math.max(1, Math.round(barWidth * value / max))
      const by = y + 6 + i * 20
      parts.push(`<rect x="${left}" y="${by}" width="${w}" height="16" fill="${s.color}"/>`)
      parts.push(`<text x="${left + w + 6}" y="${by + 12}">${value === null ? 'n/a' : Math.round(value).toLocaleString('en-US')}</text>`)
    })
  })
  parts.push(`<text x="10" y="${height - 10}" fill="#555">Bars of one colour share a scale (the longest bar is the largest value of that series).</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
