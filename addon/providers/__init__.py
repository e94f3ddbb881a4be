"""Provider modules, one per provider. Importing this package imports every module in it, and each module
registers its provider in REGISTRY, so adding a provider touches no shared file. Their own rule keys are then
assembled into the rules schema (spec.ModelOptions, spec.REFUSED_AUTH_KEYS)."""

import importlib
import pkgutil
from typing import Any

from .. import spec
from .base import REGISTRY, Call, Provider, UpstreamFormatError, UpstreamRequest

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def _declared_options() -> dict[str, tuple[Any, Any]]:
    fields: dict[str, tuple[Any, Any]] = {}
    for provider in REGISTRY.values():
        for key, declared in provider.option_fields.items():
            if fields.setdefault(key, declared) != declared:  # a subclass may inherit its parent's keys
                raise TypeError(f"model.options.{key} is declared by two providers")
        spec.REFUSED_AUTH_KEYS.update(provider.refused_auth_keys)
    return fields


spec.assemble_options(_declared_options())

__all__ = ["REGISTRY", "Call", "Provider", "UpstreamFormatError", "UpstreamRequest"]
