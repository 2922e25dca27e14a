"""The platform as one: the components `govctl up` brings up (components.yaml), the supervisor that
keeps the long-running ones running, the platform CA, and up/status/down (control.py).
Domain code: it does not import the CLI (govctl)."""
