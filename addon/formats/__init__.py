"""Client formats: what the client speaks. One module each; the translated route asks the rule's client format to
decode the client's request into the standard request (the OpenAI Chat body the providers take), to encode the
standard response into the client's own, and for the stream writer and the error shape of the client's format.
Providers never know which client format the client spoke."""

from .anthropic import ANTHROPIC
from .base import ClientFormat
from .openai import OPENAI

FORMATS: dict[str, ClientFormat] = {OPENAI.name: OPENAI, ANTHROPIC.name: ANTHROPIC}

__all__ = ["ANTHROPIC", "FORMATS", "OPENAI", "ClientFormat"]
