"""The loss report of a translated request: the names of what the translation could not carry to the provider (a
client field, a hint, an extension), as client formats, the core and providers collect them in `Call.dropped`; the
safe forms it takes in a response header and a record; and the refusal a rule asks for with `on_unsupported: refuse`.
Pure code.

The names come from the code (`top_k`, `cache_control`, `generationConfig.responseLogprobs`) and sometimes from a
client's own keys (an unknown field is reported by its name): each is cut to a few visible ASCII characters and the
list to a few dozen names, so a client can neither grow the header nor put anything but a field name in it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import ProxyError

REFUSE = "refuse"
DROP = "drop"
NAME_LIMIT = 64  # characters of one name
COUNT_LIMIT = 32  # names in a report
HEADER_LIMIT = 512  # characters of the header value
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/\[\]-]")


def safe_name(name: str) -> str:
    """A reported name as a field path of visible ASCII: other characters become '?', and it is cut."""
    return _UNSAFE.sub("?", name[:NAME_LIMIT]) or "?"


def checked(names: Iterable[str]) -> list[str]:
    """The report's names made safe, each once, at most COUNT_LIMIT of them (then one '+N more')."""
    out = list(dict.fromkeys(safe_name(n) for n in names if isinstance(n, str)))
    if len(out) > COUNT_LIMIT:
        out = [*out[: COUNT_LIMIT - 1], f"+{len(out) - COUNT_LIMIT + 1}-more"]
    return out


def add(dropped: list[str], names: Iterable[str]) -> None:
    """Append `names` to a report (in place), made safe, each once."""
    for name in checked(names):
        if name not in dropped:
            dropped.append(name)


def header_value(dropped: Iterable[str]) -> str:
    """The x-ai-proxy-dropped value: the names, comma-separated, whole names only within HEADER_LIMIT."""
    out = ""
    names = checked(dropped)
    for i, name in enumerate(names):
        more = f",+{len(names) - i}-more" if out else f"+{len(names)}-more"
        candidate = f"{out},{name}" if out else name
        if len(candidate) > HEADER_LIMIT - len(more):
            return out + more if out else more
        out = candidate
    return out


def refusal(dropped: Iterable[str], provider: str) -> ProxyError:
    """The 400 of a rule with `on_unsupported: refuse` for a request whose translation would drop `dropped`."""
    names = checked(dropped)
    return ProxyError(
        400,
        f"this route refuses requests it cannot carry whole (on_unsupported: refuse): {', '.join(names)} "
        f"cannot be sent to provider {provider}; remove {'it' if len(names) == 1 else 'them'} from the request",
        code="unsupported_field",
        param=names[0] if names else None,
    )


def enforce(on_unsupported: str, dropped: list[str], provider: str) -> None:
    """Raise the refusal when the rule refuses losses and the report is not empty."""
    if on_unsupported == REFUSE and dropped:
        raise refusal(dropped, provider)
