"""Named implementations (extractors, learned models, matchers, pair selectors, mappers,
baselines) looked up by the name a preset or an option gives, with one clear error for a
name that does not exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} {name!r}; known: {known}") from None
