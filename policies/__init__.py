"""Compliance: the 等保 control catalogs, the CrossGuard policy pack, evidence and reports."""
