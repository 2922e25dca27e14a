"""The CrossGuard entry point: one Pulumi policy per rule of rules.yaml, its clause in every message.

Run by the pulumi-analyzer-policy-python plugin (`pulumi preview --policy-pack policies/djcp_pack`,
or `govctl infra preview --stack NAME --policy-pack policies/djcp_pack`).
"""
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# The analyzer runs this file as a script from the pack folder: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (EnforcementLevel, PolicyPack, ResourceValidationPolicy,  # noqa: E402
                           StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError  # noqa: E402

from infra.plan import COMPUTED  # noqa: E402
from policies.djcp_pack.checks import label, load_rules  # noqa: E402


def plain(value):
    """Resource properties as plain data; values unknown during preview become COMPUTED."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = COMPUTED
        return out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        out = []
        for i in range(len(value)):
            try:
                out.append(plain(value[i]))
            except UnknownValueError:
                out.append(COMPUTED)
        return out
    return value


def resource_policy(rule, settings):
    def validate(args, report):
        resource = {"type": args.resource_type, "name": args.name, "urn": args.urn, "props": plain(args.props)}
        for message in rule.check(resource, settings):
            report(f"{label(rule)} {message}")
    return validate


def stack_policy(rule, settings):
    def validate(args, report):
        resources = [{"type": r.resource_type, "name": r.name, "urn": r.urn, "props": plain(r.props)}
                     for r in args.resources]
        for violation in rule.check(resources, settings):
            report(f"{label(rule)} {violation.message}", violation.urn)
    return validate


def build_pack() -> PolicyPack:
    settings, rules = load_rules()
    policies = []
    for rule in rules:
        kind, make = (ResourceValidationPolicy, resource_policy) if rule.scope == "resource" \
            else (StackValidationPolicy, stack_policy)
        policies.append(kind(name=rule.id, description=f"{label(rule)} {rule.description}",
                             validate=make(rule, settings), enforcement_level=EnforcementLevel(rule.enforcement)))
    return PolicyPack("govctl-djcp-level3", policies=policies, enforcement_level=EnforcementLevel.MANDATORY)


build_pack()
