"""compose.yaml, read as text (no YAML library or docker engine on the test machines):
the replicas' config is a valid liqbot config on PostgreSQL in webhook mode, and the
proxy's routes and health checks point at the ports that config opens."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from bot.config import Secrets, load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = (ROOT / "compose.yaml").read_text(encoding="utf-8")
ENVIRONMENT = {
    "LIQBOT_DOMAIN": "bot.example.com",
    "LIQBOT_DB_PASSWORD": "pw",
    "LIQBOT_TELEGRAM_TOKEN": "1:token",
    "LIQBOT_TELEGRAM_WEBHOOK_SECRET": "secret",
}


def interpolated(text: str) -> str:
    """Compose's `${VAR}`, `${VAR:?message}` and `${VAR:-default}`, from ENVIRONMENT."""

    def value(match: re.Match) -> str:
        name, operator, fallback = match.group(1), match.group(2), match.group(3)
        if name in ENVIRONMENT:
            return ENVIRONMENT[name]
        assert operator == ":-", f"${{{name}}} is required and unset"
        return fallback

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", value, text)


def content_of(config_name: str) -> str:
    """The inline `content: |` of a top-level `configs:` entry."""
    match = re.search(rf"^  {config_name}:\n    content: \|\n((?:      .*\n|\n)+)", COMPOSE, re.MULTILINE)
    assert match, f"no configs.{config_name}.content"
    return interpolated(textwrap.dedent(match.group(1)))


def services() -> list[str]:
    """The names under `services:` (up to the next top-level key)."""
    body = re.split(r"^\S", COMPOSE.split("\nservices:\n", 1)[1], maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^  ([\w-]+):", body, re.MULTILINE)


def test_postgresql_two_replicas_and_a_proxy():
    assert services() == ["db", "liqbot-1", "liqbot-2", "proxy"]
    (postgres,) = re.findall(r"image: postgres:(\d+)\.\d+", COMPOSE)
    assert int(postgres) >= 14  # idle_session_timeout: the leader lock's lease
    assert re.search(r"^  liqbot-1: \*replica$", COMPOSE, re.MULTILINE)
    assert re.search(r"^  liqbot-2: \*replica$", COMPOSE, re.MULTILINE)


def test_the_replicas_config_is_valid_and_the_proxy_matches_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(content_of("liqbot"), encoding="utf-8")
    config = load_config(path)
    assert config.storage.url == "postgresql://liqbot@db:5432/liqbot"
    telegram, ops = config.telegram, config.ops
    assert telegram.enabled and telegram.mode == "webhook" and telegram.webhook_listen == "0.0.0.0"
    assert telegram.webhook_url == "https://bot.example.com/telegram"
    assert (ops.http_host, ops.http_port) == ("0.0.0.0", 8321)

    caddyfile = content_of("caddyfile")
    route = re.search(r"reverse_proxy (\S+) liqbot-1:(\d+) liqbot-2:(\d+) \{", caddyfile)
    assert route and route.group(1) == "/telegram" and {route.group(2), route.group(3)} == {str(telegram.webhook_port)}
    assert re.search(r"^\s*health_uri /healthz$", caddyfile, re.MULTILINE)
    assert re.search(rf"^\s*health_port {ops.http_port}$", caddyfile, re.MULTILINE)
    assert caddyfile.startswith("bot.example.com {")


def test_the_secrets_come_from_the_environment_under_the_names_liqbot_reads(monkeypatch):
    named = set(re.findall(r"^    (LIQBOT_\w+): \$\{", COMPOSE, re.MULTILINE))
    assert named == {"LIQBOT_DB_PASSWORD", "LIQBOT_TELEGRAM_TOKEN", "LIQBOT_TELEGRAM_WEBHOOK_SECRET", "LIQBOT_DISCORD_TOKEN"}
    for name in named:
        monkeypatch.setenv(name, f"value-of-{name}")
    assert set(Secrets.from_env().values()) == {f"value-of-{name}" for name in named}
