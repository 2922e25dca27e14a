#!/usr/bin/env python3
"""The SLA sweep and an incident's detail at scale (docs/benchmarks.md, "Cases"): 10,000 open incidents created
2 h ago in a fresh SQLite store; times Incidents.sla(10000) twice (the first records every breach) and show()."""
import time, tempfile
from secops.store import Store
from secops.incidents import Incidents
d = tempfile.mkdtemp()
s = Store(d + "/s.db")
now = time.time()
with s.transaction():
    for i in range(10000):
        s.create_incident({"entity_kind": "source.ip", "entity": f"203.0.{i // 250}.{i % 250 + 1}", "title": "t",
                           "severity": ("low", "medium", "high", "critical")[i % 4], "state": "new", "assignee": None,
                           "created": now - 7200, "updated": now, "first": now - 7200, "last": now - 7200 + i})
svc = Incidents(s)
t = time.perf_counter(); rows = svc.sla(10000); first = time.perf_counter() - t
t = time.perf_counter(); svc.sla(10000); second = time.perf_counter() - t
notes = s.db.execute("SELECT count(*) FROM incident_notes WHERE kind='sla-breach'").fetchone()[0]
t = time.perf_counter()
for i in range(1, 101):
    svc.show(i)
show = (time.perf_counter() - t) / 100
print(f"sla sweep over 10000 open incidents: first {first:.2f} s (records {notes} breaches), again {second:.2f} s; show {show*1000:.1f} ms")
