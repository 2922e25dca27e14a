"""The govctl 等保 2.0 level-3 CrossGuard policy pack: rules.yaml (data) + checks.py (functions);
__main__.py is what `pulumi preview --policy-pack policies/djcp_pack` runs."""
