// The console's only backend: the SecOps REST API (mounted at /api), with the session cookie and CSRF token.
import { reactive } from 'vue'

export const session = reactive({ name: null, role: null, csrf: null, checked: false })

export class ApiError extends Error {
  constructor(status, detail, reason) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail))
    this.status = status
    this.detail = detail
    this.reason = reason
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf
  let response
  try {
    response = await fetch(`/api${path}`, {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (err) {
    throw new ApiError(0, String(err), 'network')
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null)
  if (!response.ok) {
    if (response.status === 401 && path !== '/session') {
      // the session ended (idle, expired, user disabled): back to the sign-in page, then here again
      Object.assign(session, { name: null, role: null, csrf: null })
      const here = window.location.hash.slice(1) || '/overview'
      window.location.hash = `#/sign-in?next=${encodeURIComponent(here)}`
    }
    throw new ApiError(response.status, data?.detail ?? response.statusText, data?.reason)
  }
  return data
}

export async function loadSession() {
  Object.assign(session, await api('GET', '/session'), { checked: true })
}

export const can = {
  ack: () => ['ops', 'security'].includes(session.role),
  note: () => ['ops', 'security'].includes(session.role),
  triage: () => session.role === 'security',
  ban: () => session.role === 'security',
  audit: () => ['security', 'auditor'].includes(session.role),
  // compliance tracking (issue #19, h-compare): waivers of host items, as policies/api_tracking.py allows
  waive: () => ['security', 'auditor'].includes(session.role),
}

// A message in the page's language for an API error; the server's own text (English) is shown beside it.
export function errorText(t, err) {
  const key = {
    0: 'network', 401: 'sessionEnded', 403: 'forbidden', 404: 'notFound', 409: 'conflict', 422: 'invalid',
    429: 'locked', 503: 'unavailable',
  }[err.status] || 'failed'
  const detail = Array.isArray(err.detail)
    ? err.detail.map((d) => `${(d.loc || []).slice(1).join('.')}: ${d.msg}`).join('; ')
    : err.detail
  return detail ? `${t(key)}（${detail}）` : t(key)
}

// A POST whose body is not JSON (a file, a multipart form), answered in JSON; the error keeps the answer's
// body (`err.body`), e.g. the side and files of a pack that fails verification
async function postBody(path, body, headers) {
  if (session.csrf) headers['X-CSRF-Token'] = session.csrf
  let response
  try {
    response = await fetch(`/api${path}`, { method: 'POST', headers, credentials: 'same-origin', body })
  } catch (err) {
    throw new ApiError(0, String(err), 'network')
  }
  const data = await response.json().catch(() => null)
  if (!response.ok) {
    const err = new ApiError(response.status, data?.detail ?? response.statusText, data?.reason)
    err.body = data
    throw err
  }
  return data
}

// compliance (issue #19): a file as the request body (an evidence pack to verify)
export function apiUpload(path, file, type = 'application/zip') {
  return postBody(path, file, { Accept: 'application/json', 'Content-Type': type })
}

// compare uploaded packs (issue #19): a multipart form (files and fields); no Content-Type, the browser sets
// the multipart boundary
export function apiForm(path, form) {
  return postBody(path, form, { Accept: 'application/json' })
}
