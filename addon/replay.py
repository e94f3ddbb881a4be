"""Replay: the translation run again, offline, on what a client sent — from audit records (JSON Lines written with
log_payloads) or from saved mitmproxy flows (`mitmdump -w`, with the metadata the addon keeps on each flow) — and
compared with the upstream request of the live run, so that a translation bug can be reproduced from a user's file.

    python -m addon.replay [--rules rules.yaml] [--rule NAME] FILE...

Each exchange is matched to its rule (by the name recorded with it, or --rule), decoded, checked and translated by
the same code as the live proxy (exchange.prepare_call and build_upstream), credentials aside: the records and the
flows keep the upstream request as it was before credentials were added. A request passed through untranslated
(native formats, preserve, the Responses passthrough) has nothing to replay and says so. Exit status: 0 when every
replayed request equals the live one, 1 otherwise (a difference, an error, an unreadable file)."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import jsonutil
from .errors import ProxyError
from .exchange import ClientRequest, build_upstream, prepare_call
from .formats import format_for
from .routes import route_for
from .routes.translated import Translated
from .rules import Rule
from .rulesfile import load_rules


@dataclass
class Sent:
    """One exchange as the client sent it, and what the live run sent upstream (None where it was not kept)."""

    source: str  # file:line or file#flow
    rule: str | None
    client_url: str
    headers: dict[str, str]
    body: bytes
    upstream: Any


def replay(rules: list[Rule], sent: Sent, rule_name: str | None = None) -> tuple[str, Any]:
    """("replayed", the upstream body) or ("skipped"/"error", why)."""
    name = rule_name or sent.rule
    rule = next((r for r in rules if r.name == name), None)
    if rule is None:
        return "error", f"no rule named {name!r} in the rules file"
    if not isinstance(route_for(rule), Translated):
        return "skipped", "passed through untranslated: nothing to replay"
    parts = urlsplit(sent.client_url)
    captures = rule.match(parts.hostname or "", parts.path, "POST") or {}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    content_type = sent.headers.get("content-type", "application/json")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = ClientRequest(sent.headers, query, content_type, sent.body, path)
    fmt = format_for(rule.spec.llm_format, rule.spec.route_type)
    try:
        call = prepare_call(rule, captures, request, fmt)
        return "replayed", build_upstream(rule, call, fmt).body
    except ProxyError as e:
        return "error", f"the proxy refuses it: HTTP {e.status}: {e.message}"


def from_records(path: Path) -> Iterator[Sent]:
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = jsonutil.loads(line)
            payload, meta = record.get("payload"), record["meta"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError(f"{path}:{number}: not an audit record") from None
        if not isinstance(payload, dict) or payload.get("client_request") is None:
            continue  # recorded without payloads: nothing to replay
        body = payload["client_request"]
        raw = body.encode() if isinstance(body, str) else jsonutil.dumps(body)
        url = meta.get("client_url") or ""
        yield Sent(f"{path}:{number}", meta.get("rule"), url, {}, raw, payload.get("upstream_request"))


def from_flows(path: Path) -> Iterator[Sent]:
    from mitmproxy import http, io  # only for saved flows

    with path.open("rb") as f:
        for number, flow in enumerate(io.FlowReader(f).stream(), 1):
            summary, payloads = flow.metadata.get("ai_proxy"), flow.metadata.get("ai_proxy_payloads")
            if not isinstance(flow, http.HTTPFlow) or not isinstance(summary, dict) or not isinstance(payloads, dict):
                continue  # not a flow the addon handled
            headers = {str(k).lower(): str(v) for k, v in payloads.get("client_headers") or []}
            upstream = flow.request.content if summary.get("status") is not None else None
            try:
                sent_upstream = jsonutil.loads(upstream) if upstream else None
            except ValueError:
                sent_upstream = None
            body = payloads.get("client_body") or b""
            url = summary.get("client_url") or flow.request.pretty_url
            yield Sent(f"{path}#{number}", summary.get("rule"), url, headers, body, sent_upstream)


def sources(path: Path) -> Iterator[Sent]:
    return from_records(path) if path.suffix in (".jsonl", ".json") else from_flows(path)


def diff(live: Any, replayed: Any) -> str:
    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return "\n".join(difflib.unified_diff(lines(live), lines(replayed), "live", "replayed", lineterm=""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m addon.replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="audit records (.jsonl) or saved flows (mitmdump -w)")
    ap.add_argument("--rules", type=Path, default=Path("rules.yaml"), help="the rules file (default rules.yaml)")
    ap.add_argument("--rule", help="replay with this rule instead of the one each exchange names")
    args = ap.parse_args(argv)
    try:
        rules = load_rules(args.rules)
    except Exception as e:  # a RulesError names the rule and field; anything else is still a clear message
        print(f"replay: cannot use {args.rules}: {e}", file=sys.stderr)
        return 1
    failed = counted = 0
    for path in args.files:
        try:
            for sent in sources(path):
                counted += 1
                verdict, result = replay(rules, sent, args.rule)
                if verdict != "replayed":
                    failed += verdict == "error"
                    print(f"{sent.source} [{sent.rule}]: {verdict}: {result}")
                elif sent.upstream is None:
                    print(f"{sent.source} [{sent.rule}]: replayed (no live request kept to compare)")
                    print(json.dumps(result, indent=2, ensure_ascii=False))
                elif result == sent.upstream:
                    print(f"{sent.source} [{sent.rule}]: same upstream request as the live run")
                else:
                    failed += 1
                    print(f"{sent.source} [{sent.rule}]: the upstream request differs from the live run:")
                    print(diff(sent.upstream, result))
        except (OSError, ValueError) as e:
            failed += 1
            print(f"replay: {path}: {e}", file=sys.stderr)
    print(f"{counted} exchange(s), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
