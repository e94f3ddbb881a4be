"""Client formats: what the client speaks. One module each; the translated route asks the rule's client format to
decode the client's request into the standard request (the OpenAI Chat body the providers take), to encode the
standard response into the client's own, and for the stream writer and the error shape of the client's format.
Providers never know which client format the client spoke."""

from .anthropic import ANTHROPIC
from .base import ClientFormat, TokenCount
from .gemini import GEMINI
from .openai import OPENAI
from .responses import RESPONSES
from .responses import ROUTE_TYPE as RESPONSES_ROUTE

FORMATS: dict[str, ClientFormat] = {OPENAI.name: OPENAI, ANTHROPIC.name: ANTHROPIC, GEMINI.name: GEMINI}
# Route types whose client format is not the llm_format's default one (Kong names OpenAI's Responses API a route
# type of the OpenAI format): route type -> format, consulted before FORMATS.
ROUTE_FORMATS: dict[str, ClientFormat] = {RESPONSES_ROUTE: RESPONSES}


def format_for(llm_format: str, route_type: str) -> ClientFormat:
    """The client format a rule's clients speak."""
    return ROUTE_FORMATS.get(route_type) or FORMATS.get(llm_format, OPENAI)


def format_label(llm_format: str, route_type: str) -> str:
    """The client format as the record names it: the llm_format, or `openai-responses` for the Responses API."""
    return "openai-responses" if route_type == RESPONSES_ROUTE else llm_format


def standard_route_type(route_type: str) -> str:
    """The route type of the standard request a rule's client format decodes into: Chat for the route types whose
    own client format translates (Responses), else the rule's own."""
    return "llm/v1/chat" if route_type in ROUTE_FORMATS else route_type


__all__ = [
    "ANTHROPIC", "FORMATS", "GEMINI", "OPENAI", "RESPONSES", "ROUTE_FORMATS", "ClientFormat", "TokenCount",
    "format_for", "format_label", "standard_route_type",
]  # fmt: skip
