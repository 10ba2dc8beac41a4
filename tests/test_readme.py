"""The README stays true: every command and every venue stream of the registries is documented there."""

from __future__ import annotations

from pathlib import Path

from bot.commands.registry import COMMANDS
from bot.feeds.venues import venue_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_command_is_in_the_readme_with_its_usage():
    missing = [spec.usage() for spec in COMMANDS if f"`{spec.usage()}`" not in README]
    assert missing == []


def test_the_readme_set_up_commands_are_the_ci_ones():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert test_command.replace(" -q \".[test]\"", " \".[test]\"") in README
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/liqbot demo" in README


def test_the_readme_venue_table_is_the_registry():
    assert venue_table() in README
