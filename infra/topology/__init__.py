"""The topology model: load, validate, and read the two-site-three-center cloud description."""
from .model import ROLE_LABELS, ROLES, ZONE_KINDS, ZONE_LABELS, Center, Host, Topology, Zone
from .validate import DEFAULT_TOPOLOGY, Problem, TopologyError, check_document, load_topology

__all__ = [
    "Center", "DEFAULT_TOPOLOGY", "Host", "Problem", "ROLES", "ROLE_LABELS", "Topology",
    "TopologyError", "ZONE_KINDS", "ZONE_LABELS", "Zone", "check_document", "load_topology",
]
