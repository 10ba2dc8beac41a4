"""A Reply as JSON text and back, for the outbox: the platform-neutral message is
what is stored, so any replica renders it with its own adapters (Telegram HTML,
Discord embeds, plain) when it sends.

Every model class travels with its name ("_"), enums with theirs, PNG bytes as
base64; tuples come back as tuples, so a decoded Reply equals the original.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from enum import Enum

from bot.replies.model import (
    Action, Align, Bullets, Column, Field, Fields, Image, Note, Paragraph, Reply, Span, Style, Table, Tone,
)

_CLASSES = {cls.__name__: cls for cls in (Action, Bullets, Column, Field, Fields, Image, Note, Paragraph, Reply, Span, Table)}
_ENUMS = {cls.__name__: cls for cls in (Align, Style, Tone)}


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return {"_enum": type(value).__name__, "value": value.value}
    if dataclasses.is_dataclass(value):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"_": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return {"_b64": base64.b64encode(value).decode("ascii")}
    return value


def _model(value: object) -> object:
    if isinstance(value, list):
        return tuple(_model(item) for item in value)
    if not isinstance(value, dict):
        return value
    if "_b64" in value:
        return base64.b64decode(value["_b64"])
    if "_enum" in value:
        return _ENUMS[value["_enum"]](value["value"])
    fields = {name: _model(item) for name, item in value.items() if name != "_"}
    return _CLASSES[value["_"]](**fields)


def reply_to_json(reply: Reply) -> str:
    return json.dumps(_plain(reply), ensure_ascii=False, separators=(",", ":"))


def reply_from_json(text: str) -> Reply:
    reply = _model(json.loads(text))
    if not isinstance(reply, Reply):
        raise ValueError("not a stored Reply")
    return reply
