"""One route per mode of a rule: translated, native (llm_format) or preserve."""

from ..formats.responses import ROUTE_TYPE as RESPONSES_ROUTE
from ..providers import REGISTRY
from ..rules import Rule
from .base import Route, Services, finish_stream
from .faults import interrupted
from .native import Native
from .preserve import Preserve
from .responses import ResponsesPassthrough, ResponsesTranslated
from .translated import Translated

TRANSLATED, NATIVE, PRESERVE = Translated(), Native(), Preserve()
RESPONSES_PASSTHROUGH, RESPONSES_TRANSLATED = ResponsesPassthrough(), ResponsesTranslated()


def route_for(rule: Rule) -> Route:
    """Preserve; the Responses passthrough where the provider serves that API; native when the client speaks the
    provider's own format; otherwise translated."""
    spec = rule.spec
    if spec.route_type == "preserve":
        return PRESERVE
    if spec.route_type == RESPONSES_ROUTE and REGISTRY[spec.model.provider].serves_responses:
        return RESPONSES_PASSTHROUGH  # the provider's own API
    if spec.route_type == RESPONSES_ROUTE:
        return RESPONSES_TRANSLATED
    if spec.llm_format != "openai" and spec.llm_format == REGISTRY[spec.model.provider].native_format:
        return NATIVE
    return TRANSLATED


__all__ = ["Route", "Services", "finish_stream", "interrupted", "route_for"]
