"""Which config keys are ports a gateway binds, read from the settings models.

A listener port is a field named ``port`` or ``*_port`` whose default is a number
(``OscarSettings.bos_port`` defaults to None: it is only announced, never bound).
Tests start every gateway with 0 in each of them, so a running ``./dev run`` or
another test run on the same machine never collides with a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from adapters.msn.adapter import MsnSettings
from adapters.oscar.adapter import OscarSettings
from adapters.uin.adapter import UinSettings
from gateway.config import Config

SETTINGS_MODELS: dict[str, type[BaseModel]] = {
    "oscar": OscarSettings,
    "msn": MsnSettings,
    "uin": UinSettings,
}
"""Each installed adapter's ``[adapters.<network>]`` model (a test checks it is complete)."""

UDP = {("adapters.uin", "port")}
"""The one datagram listener; every other port is TCP."""


def port_fields(model: type[BaseModel]) -> dict[str, int]:
    """Field name -> default of every port the model's owner binds."""
    return {
        name: field.default
        for name, field in model.model_fields.items()
        if (name == "port" or name.endswith("_port"))
        and isinstance(field.default, int)
        and not isinstance(field.default, bool)
    }


def default_ports() -> dict[tuple[str, str], int]:
    """(section, key) -> default port, for the core's sections and every adapter."""
    ports: dict[tuple[str, str], int] = {}
    for section, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key, value in port_fields(annotation).items():
                ports[(section, key)] = value
    for network, model in SETTINGS_MODELS.items():
        for key, value in port_fields(model).items():
            ports[(f"adapters.{network}", key)] = value
    return ports


def bound_ports(config: Config) -> dict[tuple[str, str], int]:
    """(section, key) -> the port a gateway started with ``config`` would bind (0: any
    free one), for every enabled section that binds one."""
    ports: dict[tuple[str, str], int] = {}
    dumped: Mapping[str, Any] = config.model_dump()
    for section, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key in port_fields(annotation):
                ports[(section, key)] = int(dumped[section][key])
    if not config.admin.enabled:
        ports.pop(("admin", "port"), None)
    for network, settings in config.enabled_adapters().items():
        model = SETTINGS_MODELS.get(network)
        if model is None:  # a test adapter (jsonline): its own "port" key, default 0
            ports[(f"adapters.{network}", "port")] = int(settings.get("port", 0))
            continue
        validated = model.model_validate(settings)
        for key in port_fields(model):
            ports[(f"adapters.{network}", key)] = int(getattr(validated, key))
    return ports
