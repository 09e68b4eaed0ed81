"""Find adapters: the ``gateway.adapters`` entry points, plus ``module:callable``
references given in the config (for adapters not installed as packages)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from adapters.contract import ENTRY_POINT_GROUP, Adapter

AdapterFactory = Callable[[], Adapter]


class AdapterNotFound(LookupError):
    pass


def installed_adapters() -> dict[str, str]:
    """network name -> ``module:callable`` of every installed adapter."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_factory(reference: str) -> AdapterFactory:
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise AdapterNotFound(f"an adapter reference is module:callable, got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterNotFound(f"cannot import {module_name!r}: {exc}") from None
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AdapterNotFound(f"{module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise AdapterNotFound(f"{reference!r} is not callable")
    return cast(AdapterFactory, target)


def find_adapter(network: str, extra: dict[str, str] | None = None) -> AdapterFactory:
    """The factory for ``network``: from ``extra`` (config) first, then entry points."""
    references = installed_adapters()
    references.update(extra or {})
    if network not in references:
        raise AdapterNotFound(
            f"no adapter for network {network!r} (installed: {sorted(references) or 'none'})"
        )
    return load_factory(references[network])
