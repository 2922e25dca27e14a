// Tag colours of severities and states (Element Plus tag types).
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'informational']
export const STATES = ['new', 'acknowledged', 'contained', 'resolved', 'false-positive']
export const severityType = (s) => ({ critical: 'danger', high: 'danger', medium: 'warning', low: 'primary' }[s] || 'info')
export const stateType = (s) => ({ new: 'danger', acknowledged: 'warning', contained: 'primary', resolved: 'success' }[s] || 'info')
