"""SecOps on Elasticsearch: a local node, the ECS index templates, the store, bulk ingestion with
spooling, Sigma detection as scheduled searches, and scale-out ingest workers.

The embedded SQLite store (secops.store) stays the default; `secops.stores.open_store` picks one.
"""
