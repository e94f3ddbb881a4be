"""Provider modules, one per provider; importing this package registers them all in REGISTRY."""

from . import anthropic, azure, openai
from .base import REGISTRY, Call, Provider, UpstreamFormatError, UpstreamRequest

__all__ = [
    "REGISTRY",
    "Call",
    "Provider",
    "UpstreamFormatError",
    "UpstreamRequest",
    "anthropic",
    "azure",
    "openai",
]
