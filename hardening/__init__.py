"""Host hardening and audit to the 等保 2.0 host baseline: catalog, inventory, runner, verdicts."""
