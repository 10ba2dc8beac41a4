"""The import arrows of DESIGN.md: adapters -> commands -> replies -> core;
storage and feeds import only core; core imports nothing of ours. `plumbing`
(clock, redaction, delivery errors) may be imported by every layer and imports
nothing of ours itself."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bot"

# layer -> the layers it may import (besides itself).
ALLOWED = {
    "plumbing": set(),
    "core": set(),
    "feeds": {"core"},
    "storage": {"core"},
    "replies": {"core"},
    "commands": {"replies", "core"},
    "adapters": {"commands", "replies", "core"},
    "services": {"storage", "feeds", "commands", "replies", "core"},
    "scheduler": {"services", "storage", "commands", "replies", "core"},
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_imports_follow_the_layers():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own_layer = layer_of(".".join(relative.parts))
        if own_layer not in ALLOWED:
            continue  # app.py, cli.py and friends may import everything
        for line, module in imports_of(path):
            target = layer_of(module)
            if target is None or target == own_layer or (target == "plumbing" and own_layer != "plumbing"):
                continue
            if target not in ALLOWED[own_layer]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert wrong == []


def test_core_is_pure():
    io_modules = {"asyncio", "aiosqlite", "httpx", "websockets", "sqlite3", "telegram", "discord", "socket"}
    wrong = [
        f"{path.name}:{line} imports {module}"
        for path in (PACKAGE / "core").rglob("*.py")
        for line, module in imports_of(path)
        if module.split(".")[0] in io_modules
    ]
    assert wrong == []


def test_the_guard_itself_catches_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from bot.storage.store import Store\n")
    assert imports_of(bad) == [(1, "bot.storage.store")]
    assert "storage" not in ALLOWED["commands"]
