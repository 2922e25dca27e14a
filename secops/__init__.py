"""Security operations: ingest → normalize (ECS) → Sigma detection and correlation → interception → incidents.

Events are flat dicts keyed by dotted Elastic Common Schema field names (`source.ip`, `user.name`,
`event.action`…), with `@timestamp` as epoch seconds (float); `secops.ecs.to_document` nests them.
"""
