"""Command groups of the CLI. Each module here defines `app`, a Typer group named after it;
govctl.cli registers every module it finds, so a new group needs no edit elsewhere.
Keep heavy imports inside the command functions: `govctl --help` imports every module."""
