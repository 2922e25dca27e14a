// Times in the user's zone (default Asia/Shanghai, the zone of the platform's users).
import { ref } from 'vue'

export const ZONES = ['Asia/Shanghai', 'UTC', Intl.DateTimeFormat().resolvedOptions().timeZone]
  .filter((z, i, all) => z && all.indexOf(z) === i)
export const zone = ref(localStorage.getItem('govctl.zone') || 'Asia/Shanghai')

export function setZone(value) {
  zone.value = value
  localStorage.setItem('govctl.zone', value)
}

const parts = (date, tz) => Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
  timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  second: '2-digit', hourCycle: 'h23',
}).formatToParts(date).map((p) => [p.type, p.value]))

export function toDate(value) {
  if (value == null || value === '') return null
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value)
  return Number.isNaN(d.getTime()) ? null : d
}

// "2026-12-07 02:15:00" in the chosen zone.
export function fmt(value) {
  const d = toDate(value)
  if (!d) return '—'
  const p = parts(d, zone.value)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`
}

// The calendar day of a time in the chosen zone, "2026-12-07".
export function dayOf(value) {
  const d = toDate(value)
  if (!d) return ''
  const p = parts(d, zone.value)
  return `${p.year}-${p.month}-${p.day}`
}

export function duration(seconds) {
  if (seconds <= 0) return '0:00:00'
  const s = Math.floor(seconds)
  const d = Math.floor(s / 86400)
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((n, i) => (i ? String(n).padStart(2, '0') : String(n))).join(':')
  return d ? `${d}d ${hms}` : hms
}
