"""``python -m tests.cli_sequence FILE``: run the CLI once for each argument list in the JSON file FILE,
in one process (under torchrun: one launch and one process group for several validations, where each
launch costs a Python start-up and a rendezvous). Exits with the first non-zero exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vltasks.cli import main as cli

if __name__ == "__main__":
    for argv in json.loads(Path(sys.argv[1]).read_text()):
        code = cli(argv)
        if code:
            sys.exit(code)
