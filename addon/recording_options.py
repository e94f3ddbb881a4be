"""The addon's options for its audit records (where they go and the file names' tag), checked as mitmproxy options
are: an unusable value is an OptionsError naming the option."""

from __future__ import annotations

import re
from typing import Any

from mitmproxy import exceptions

from . import audit

_TAG = re.compile(r"[A-Za-z0-9_-]{0,64}")
NAMES = frozenset({"ai_recordings", "ai_recordings_tag"})


def add_options(loader: Any) -> None:
    loader.add_option("ai_recordings", str, "recordings", "Folder for the AI proxy's JSONL audit records.")
    loader.add_option(
        "ai_recordings_tag",
        str,
        "",
        "A tag in the audit files' names (ai-proxy-DATE.TAG.jsonl): one per process when several share a folder.",
    )


def recorder(options: Any) -> audit.Recorder:
    """A recorder for the options' folder and tag."""
    folder, tag = options.ai_recordings, options.ai_recordings_tag
    if not folder:
        raise exceptions.OptionsError("ai_recordings must name a folder")
    if not _TAG.fullmatch(tag):
        raise exceptions.OptionsError("ai_recordings_tag takes letters, digits, '_' and '-' (at most 64)")
    try:
        return audit.Recorder(folder, tag=tag)
    except OSError as e:
        raise exceptions.OptionsError(f"ai_recordings {folder}: {e}") from None
