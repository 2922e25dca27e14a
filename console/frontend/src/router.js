// Hash history: the page's routes live after '#', so they never collide with the API's paths.
import { createRouter, createWebHashHistory } from 'vue-router'
import { loadSession, session } from './api'
import SignIn from './pages/SignIn.vue'
import Incidents from './pages/Incidents.vue'

// Pages other than the incidents list load as chunks of their own when first shown (with the Element Plus
// components only they use), so the list, the analyst's first page, parses the least (issue #17, first render).
const IncidentDetail = () => import('./pages/IncidentDetail.vue')
const Events = () => import('./pages/Events.vue')
const Bans = () => import('./pages/Bans.vue')
const Audit = () => import('./pages/Audit.vue') // audit trail (issue #19)
// compliance compare and remediation tracking (issue #19, h-compare)
const ComplianceCompare = () => import('./pages/ComplianceCompare.vue')
const Remediation = () => import('./pages/Remediation.vue')

const Compliance = () => import('./pages/Compliance.vue') // compliance reports (issue #19)

// ops pages: topology and availability (issue #19, h-ops)
const Topology = () => import('./pages/Topology.vue')
const Availability = () => import('./pages/Availability.vue')

const Drills = () => import('./pages/Drills.vue') // drills page (issue #19)

const Hardening = () => import('./pages/Hardening.vue') // host hardening (issue #19)

// The overview's plots pull in ECharts (about half the bundle): loaded as a chunk of its own when first shown,
// so the other pages start without parsing it (docs/benchmarks.md, first render of the incidents page).
const Overview = () => import('./pages/Overview.vue')

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/', redirect: '/overview' },
    { path: '/sign-in', component: SignIn, meta: { open: true } },
    { path: '/overview', component: Overview },
    { path: '/incidents', component: Incidents },
    { path: '/incidents/:id(\\d+)', component: IncidentDetail, props: (r) => ({ id: Number(r.params.id) }) },
    { path: '/events', component: Events },
    { path: '/bans', component: Bans },
    { path: '/audit', component: Audit }, // audit trail (issue #19)
    // compliance compare and remediation tracking (issue #19, h-compare)
    { path: '/compliance-compare', component: ComplianceCompare },
    { path: '/remediation', component: Remediation },
    { path: '/compliance', component: Compliance }, // compliance reports (issue #19)
    { path: '/topology', component: Topology }, // ops (issue #19, h-ops)
    { path: '/availability', component: Availability }, // ops (issue #19, h-ops)
    { path: '/drills', component: Drills }, // drills page (issue #19)
    { path: '/hardening', component: Hardening }, // host hardening (issue #19)
    { path: '/:rest(.*)*', redirect: '/overview' },
  ],
})

router.beforeEach(async (to) => {
  if (!session.checked) {
    try { await loadSession() } catch { session.checked = true }
  }
  if (!to.meta.open && !session.name) return { path: '/sign-in', query: { next: to.fullPath } }
  if (to.path === '/sign-in' && session.name) return '/overview'
  return true
})
