"""The test run shows no library warnings we cannot act on (filtered in pyproject.toml, with the reason)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_known_library_deprecations_are_filtered():
    run = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/test_discord.py::test_a_rejected_token_is_one_clear_error",
            "tests/test_telegram.py::test_flood_wait_is_honoured_and_the_message_delivered",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert "2 passed" in run.stdout, run.stdout[-2000:]
    assert "warning" not in run.stdout.lower(), run.stdout[-2000:]
