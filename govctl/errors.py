"""The CLI's view of the ground floor's errors (core.errors): one definition, used by both."""
from core.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, BadInput, GovctlError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "BadInput", "GovctlError"]
