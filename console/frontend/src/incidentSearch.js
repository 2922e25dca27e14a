// The incidents page's request (GET /incident-search) from the URL's query. main.js sends it at start-up, while
// the session is being checked, when the page opened is the incidents list: the first render then waits for
// one round trip less (docs/benchmarks.md, console first render).
import { api } from './api'

export const PAGE_SIZES = [20, 50, 100]
const TEXT_FILTERS = ['rule', 'center', 'source', 'q', 'since', 'until']

const list = (value) => (value ? String(value).split(',').filter(Boolean) : [])
const text = (value) => (value ? String(value) : '')

// The page's state as the URL's query says it (anything unknown or malformed falls back to the default).
export function viewOf(query) {
  const size = parseInt(query.size, 10)
  const view = {
    state: list(query.state), severity: list(query.severity), sort: text(query.sort) || '-last',
    page: Math.max(1, parseInt(query.page, 10) || 1), size: PAGE_SIZES.includes(size) ? size : PAGE_SIZES[0],
  }
  for (const key of TEXT_FILTERS) view[key] = text(query[key])
  return view
}

// The URL's query for a view (defaults left out, so the plain list has a plain URL).
export function queryOf(view, keepPage) {
  const query = {}
  for (const key of ['state', 'severity']) if (view[key].length) query[key] = view[key].join(',')
  for (const key of TEXT_FILTERS) if (view[key]) query[key] = view[key]
  if (view.sort !== '-last') query.sort = view.sort
  if (keepPage && view.page > 1) query.page = String(view.page)
  if (view.size !== PAGE_SIZES[0]) query.size = String(view.size)
  return query
}

function pathOf(view) {
  const params = new URLSearchParams({ sort: view.sort, offset: String((view.page - 1) * view.size), limit: String(view.size) })
  for (const s of view.state) params.append('state', s)
  for (const s of view.severity) params.append('severity', s)
  for (const key of TEXT_FILTERS) if (view[key]) params.set(key, view[key])
  return `/incident-search?${params}`
}

let early = null

export function sendEarly(query) {
  const path = pathOf(viewOf(query))
  early = { path, answer: api('GET', path) }
  early.answer.catch(() => {}) // the page reports the error when it asks for the answer
}

export function search(view) {
  const path = pathOf(view)
  const sent = early && early.path === path ? early.answer : null
  early = null
  return sent || api('GET', path)
}
