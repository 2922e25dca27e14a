"""govctl's ground floor: what every package may import (errors, paths, the shared vocabulary).
It imports nothing else of the project."""
