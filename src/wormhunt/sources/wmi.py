"""Placeholder: the wmi parser is being written; it registers its formats in FORMATS."""

from __future__ import annotations

from wormhunt.sources.base import Format

FORMATS: tuple[Format, ...] = ()
