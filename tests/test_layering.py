"""The import arrows of DESIGN.md, stated exactly:

    adapters -> commands -> replies -> core; storage and feeds import only core;
    services may not import adapters or commands; scheduler.py is APScheduler
    wiring over the services; plumbing (clock, redaction, delivery errors,
    bounds) may be imported by every layer and imports nothing of ours; app.py
    (the composition root) and cli.py may import everything.

Every module of `bot` belongs to exactly one entry below, so a new module or
package cannot slip past the check. Relative imports, `from bot import x` and
imports inside functions count like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bot"
EVERYTHING = None  # the composition root and the command line

# layer -> the layers it may import, besides itself and plumbing.
ALLOWED: dict[str, set[str] | None] = {
    "plumbing": set(),
    "core": set(),
    "feeds": {"core"},
    "storage": {"core"},
    "replies": {"core"},
    "commands": {"replies", "core"},
    "adapters": {"commands", "replies", "core"},
    "services": {"storage", "feeds", "replies", "core"},
    "scheduler": {"services", "core"},
    "config": {"feeds", "core"},  # each venue's settings live with the venue
    "logsetup": set(),
    "sample": {"feeds", "core"},  # the demo recording's generator
    "app": EVERYTHING,
    "cli": EVERYTHING,
    "__main__": {"cli"},
    "__init__": set(),
}


def layer_of(module: str) -> str | None:
    """`bot.services.live` -> "services"; None for modules that are not ours."""
    parts = module.split(".")
    if parts[0] != "bot":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target == "bot":  # `from bot import services`: each name is a module of ours
                found += [(node.lineno, f"bot.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def wrong_arrows(root: Path) -> list[str]:
    """Every import in the package at `root` that DESIGN.md's arrows forbid."""
    wrong = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        if own not in ALLOWED:
            wrong.append(f"{path.relative_to(root.parent)}: in no layer of DESIGN.md")
            continue
        allowed = ALLOWED[own]
        for line, imported in imports_of(path, module):
            target = layer_of(imported)
            if target is None or target == own or allowed is EVERYTHING:
                continue
            if target == "plumbing" and own != "plumbing":
                continue
            if target not in allowed:
                wrong.append(f"{path.relative_to(root.parent)}:{line} imports {imported}")
    return wrong


def test_imports_follow_the_layers():
    assert wrong_arrows(PACKAGE) == []


def test_core_is_pure():
    io_modules = {"asyncio", "aiosqlite", "httpx", "websockets", "sqlite3", "telegram", "discord", "socket"}
    wrong = [
        f"{path.name}:{line} imports {module}"
        for path in (PACKAGE / "core").rglob("*.py")
        for line, module in imports_of(path, module_name(path, PACKAGE))
        if module.split(".")[0] in io_modules
    ]
    assert wrong == []


def test_the_check_catches_each_kind_of_wrong_arrow(tmp_path):
    root = tmp_path / "bot"
    files = {
        "services/uses_commands.py": "from bot.commands.dispatch import Dispatcher\n",  # services !-> commands
        "services/uses_adapters.py": "def later():\n    import bot.adapters.telegram\n",  # inside a function
        "storage/relative.py": "from ..replies import compose\n",  # storage -> replies, relatively
        "feeds/from_bot.py": "from bot import services\n",  # feeds -> services via `from bot import`
        "replies/upward.py": "from bot.commands.parse import Invocation\n",  # replies -> commands
        "plumbing/reaching.py": "from bot.core.models import Window\n",  # plumbing imports nothing of ours
        "newlayer/thing.py": "x = 1\n",  # a package DESIGN.md does not place
        # Allowed: these must not be reported.
        "adapters/fine.py": "from bot.commands.dispatch import Dispatcher\nfrom bot.plumbing.clock import now\n",
        "services/fine.py": "from bot.storage.store import Store\nfrom . import notifier\nfrom .. import plumbing\n",
        "app.py": "from bot.adapters.telegram import TelegramAdapter\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert wrong_arrows(root) == [
        "bot/feeds/from_bot.py:1 imports bot.services",
        "bot/newlayer/thing.py: in no layer of DESIGN.md",
        "bot/plumbing/reaching.py:1 imports bot.core.models",
        "bot/replies/upward.py:1 imports bot.commands.parse",
        "bot/services/uses_adapters.py:2 imports bot.adapters.telegram",
        "bot/services/uses_commands.py:1 imports bot.commands.dispatch",
        "bot/storage/relative.py:1 imports bot.replies",
    ]
