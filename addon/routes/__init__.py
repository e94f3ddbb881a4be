"""One route per mode of a rule: translated, native (llm_format) or preserve."""

from ..rules import Rule
from .base import Route, Services, finish_stream
from .faults import interrupted
from .native import Native
from .preserve import Preserve
from .translated import Translated

TRANSLATED, NATIVE, PRESERVE = Translated(), Native(), Preserve()


def route_for(rule: Rule) -> Route:
    if rule.spec.route_type == "preserve":
        return PRESERVE
    if rule.spec.llm_format != "openai":
        return NATIVE
    return TRANSLATED


__all__ = ["Route", "Services", "finish_stream", "interrupted", "route_for"]
