"""Plumbing every layer may import: the wall clock, token redaction, delivery errors.

Not domain logic; kept apart from `bot.core` so the core stays the pure model."""
