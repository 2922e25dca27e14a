"""`python -m govctl`: the same CLI (the platform's supervisor starts govctl commands this way)."""
from .cli import main

main()
