"""The security console: people sign in (argon2 passwords, server-side sessions, CSRF, lockout) and triage
incidents in a Vue 3 + Element Plus single-page app served by the same FastAPI application as the SecOps API."""
