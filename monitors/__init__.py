"""Availability monitoring: the SLO spec → Prometheus rules, the probe and replication exporters,
the monitoring platform (Prometheus, Alertmanager, webhook) and availability reports.
See docs/monitoring.md."""
