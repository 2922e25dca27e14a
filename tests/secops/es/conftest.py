"""The node fixtures (es_node, es_section) live in tests/conftest.py, shared with tests/secops."""
