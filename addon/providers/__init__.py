"""Provider modules, one per provider. Importing this package imports every module in it, and each module
registers its provider in REGISTRY, so adding a provider touches no shared file."""

import importlib
import pkgutil

from .base import REGISTRY, Call, Provider, UpstreamFormatError, UpstreamRequest

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Call", "Provider", "UpstreamFormatError", "UpstreamRequest"]
