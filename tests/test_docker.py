"""The Dockerfile and .dockerignore, read as text (no docker engine on the test
machines): each point of a sound image is checked here."""

from __future__ import annotations

import posixpath
import re
import shlex
import subprocess
import sys
from pathlib import Path

from bot.config import Config

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def index_of(predicate) -> int:
    return next(i for i, step in enumerate(instructions()) if predicate(*step))


def test_the_base_image_is_pinned_to_an_exact_python_and_debian():
    (base,) = [args for op, args in instructions() if op == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_dependencies_are_installed_in_a_layer_before_the_code_is_copied():
    steps = instructions()
    deps = index_of(lambda op, args: op == "RUN" and "pip install -r" in args)
    code = index_of(lambda op, args: op == "COPY" and args.split()[0] == "bot")
    assert deps < code
    copied_before = [args.split()[:-1] for op, args in steps[:deps] if op in ("COPY", "ADD")]
    assert copied_before == [["pyproject.toml"]]  # the layer depends on nothing else
    # ...and installs exactly pyproject's dependencies (no second list to keep in sync),
    assert "tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']" in steps[deps][1]
    # so the project itself is installed without them.
    (project,) = [args for op, args in steps[code:] if op == "RUN" and "pip install" in args]
    assert "--no-deps" in project


def test_the_font_cache_is_built_at_image_time_by_the_user_that_runs_liqbot():
    steps = instructions()
    (user,) = [args for op, args in steps if op == "USER"]
    installed = index_of(lambda op, args: op == "RUN" and "pip install --no-deps" in args)
    became_user = index_of(lambda op, args: op == "USER")
    fonts = index_of(lambda op, args: op == "RUN" and "font_manager" in args)
    assert installed < became_user < fonts
    assert user == "liqbot"
    assert not any(op == "ENV" and "MPLCONFIGDIR" in args for op, args in steps)  # the cache is in its home


def test_the_health_check_runs_liqbot_health():
    (check,) = [args for op, args in instructions() if op == "HEALTHCHECK"]
    command = check.split("CMD", 1)[1].strip()
    assert shlex.split(command.strip("[]").replace(",", " ")) == ["liqbot", "health"]
    result = subprocess.run([sys.executable, "-m", "bot", "health", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "--stale-after" in result.stdout


def test_the_database_is_on_the_volume_at_data_liqbot_sqlite():
    steps = instructions()
    workdir, links = "/", {}
    for op, args in steps:
        if op == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        elif op == "RUN" and (link := re.search(r"ln -s (\S+) (\S+)", args)):
            links[posixpath.join(workdir, link.group(2))] = link.group(1)
    database = posixpath.join(workdir, Config().storage.path)
    for link, target in links.items():
        if database.startswith(link + "/"):
            database = target + database[len(link):]
    assert database == "/data/liqbot.sqlite"
    assert ("VOLUME", '["/data"]') in steps


# -- .dockerignore ---------------------------------------------------------------


def _regex(pattern: str) -> str:
    """Docker's pattern syntax (Go filepath.Match plus `**`), as a regex over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return out


def ignored(path: str) -> bool:
    """Whether the build context leaves `path` out: the last matching line decides,
    and a line that matches a parent directory matches everything under it."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    verdict = False
    for line in (line.strip() for line in lines):
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        regex = _regex(posixpath.normpath(line.lstrip("!").strip("/")))
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            verdict = not negated
    return verdict


def test_dockerignore_keeps_local_state_out_of_the_image():
    for path in (
        ".venv/lib/python3.11/site-packages/x.py", "venv/bin/python", ".git/HEAD",
        "bot/__pycache__/app.cpython-311.pyc", "bot/storage/__pycache__/store.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids", ".hypothesis/examples/x", ".mypy_cache/x", ".ruff_cache/x",
        "data/liqbot.sqlite", "liqbot.sqlite", "liqbot.sqlite-wal", "x/demo.db", "recording.jsonl.gz",
        "config.toml",
    ):
        assert ignored(path), path


def test_dockerignore_keeps_everything_the_image_installs():
    shipped = subprocess.run(["git", "ls-files", "bot"], capture_output=True, text=True, cwd=ROOT, check=True)
    needed = shipped.stdout.split() + ["pyproject.toml", "README.md"]
    assert "bot/data/sample.jsonl.gz" in needed
    assert [path for path in needed if ignored(path)] == []


def test_the_monitoring_port_is_exposed():
    assert ("EXPOSE", str(Config().ops.http_port)) in instructions()
