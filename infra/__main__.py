"""The govctl Pulumi program: render the stack's topology with the stack's backend.

Stack config (set by govctl from infra/stacks/<stack>.yaml): govctl:backend, govctl:topology.
The topology is validated before any resource is registered, so a wrong file touches nothing.
"""
import pulumi

from infra.backends import deploy_stack

deploy_stack(pulumi.Config("govctl"))
