"""Metric names the exporters expose and the generated rules read (one place for both sides)."""

PROBE_SUCCESS = "govctl_probe_success"                   # {vantage, center, service, target} 1/0
PROBE_DURATION = "govctl_probe_duration_seconds"
PROBE_HTTP_STATUS = "govctl_probe_http_status_code"
PROBE_SERVED_BY = "govctl_probe_served_by"               # {…, served_by} 1: which center answered
PROBE_FAILURES = "govctl_probe_failures_total"           # {…, reason} counter
PROBE_CYCLE_SECONDS = "govctl_probe_cycle_duration_seconds"
PROBE_CYCLE_TARGETS = "govctl_probe_cycle_targets"
PROBE_LAST_CYCLE = "govctl_probe_last_cycle_timestamp_seconds"

PG_UP = "govctl_pg_up"                                   # {center} 1 when the exporter reached it
PG_IS_PRIMARY = "govctl_pg_is_primary"                   # {center} 1 on the primary
PG_STANDBY_STREAMING = "govctl_pg_standby_streaming"     # {standby, mode} 1 while streaming
PG_STANDBY_SYNCHRONOUS = "govctl_pg_standby_synchronous"  # {standby, mode} 1 when sync_state=sync
PG_LAG_BYTES = "govctl_pg_replication_lag_bytes"         # {standby, mode} primary WAL − replayed
PG_LAG_SECONDS = "govctl_pg_replication_lag_seconds"     # {standby, mode} age of replayed heartbeat
PG_REPLAY_PAUSED = "govctl_pg_replay_paused"             # {standby, mode}
PG_HEARTBEAT = "govctl_pg_heartbeat_timestamp_seconds"   # last heartbeat written on the primary

# Recording rules of the generated file that other parts read (Sloth-compatible where Sloth has one).
SLI_INSTANT = "slo:sli_error:instant"                    # 1 when the quorum failed at that step
BUDGET_REMAINING = "slo:period_error_budget_remaining:ratio"
CENTER_SERVING = "govctl:center:serving"
STANDBY_DR_READY = "govctl:standby:dr_ready"
