"""Audit records as the addon writes them (record.build's shape), for the report's tests and its benchmark."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def record(
    day: str,
    *,
    rule: str = "openai-audit",
    provider: str = "openai",
    model: str | None = "gpt-4o-mini",
    client_format: str | None = None,
    status: int | None = 200,
    error: str | None = None,
    latency: float | None = 500.0,
    ttft: float | None = None,
    prompt: int | None = 100,
    completion: int | None = 20,
    cost: float | None = 0.001,
    cached: int | None = None,
    written: int | None = None,
    payload: Any = None,
    at: str = "12:00:00.000",
) -> dict[str, Any]:
    """One record; `cached` and `written` go where record.build puts them (usage.cached_tokens and
    usage.cache_write_tokens)."""
    meta: dict[str, Any] = {
        "rule": rule,
        "provider_name": provider,
        "route_type": "llm/v1/chat",
        "request_model": model,
        "response_model": model,
        "stream": ttft is not None,
        "status": status,
        "upstream_status": status,
        "llm_latency": latency,
        "time_to_first_token": ttft,
        "client_url": "https://api.openai.com/v1/chat/completions",
        "upstream_url": "https://api.openai.com/v1/chat/completions",
        "error": error,
        "timeout": None,
    }
    if client_format is not None:
        meta["client_format"] = client_format
    out: dict[str, Any] = {"timestamp": f"{day}T{at}Z", "id": f"{day}-{random.random()}", "meta": meta}
    total = None if prompt is None and completion is None else (prompt or 0) + (completion or 0)
    out["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cost": cost,
        "time_per_token": None,
    }
    if cached is not None:
        out["usage"]["cached_tokens"] = cached
    if written is not None:
        out["usage"]["cache_write_tokens"] = written
    if payload is not None:
        out["payload"] = payload
    return out


def write(folder: Path, records: list[dict[str, Any]], name: str | None = None) -> Path:
    """Append records to the day file of the first one (or `name`), one JSON line each."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"ai-proxy-{records[0]['timestamp'][:10]}.jsonl")
    with path.open("ab") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


# (provider, model, rule, client format, USD per 1M input tokens, per 1M output tokens, share of the traffic)
MODELS = (
    ("openai", "gpt-4o-mini", "openai-audit", None, 0.15, 0.6, 30),
    ("openai", "gpt-4.1", "openai-audit", None, 2.0, 8.0, 15),
    ("anthropic", "claude-sonnet-4-5", "claude", None, 3.0, 15.0, 15),
    ("anthropic", "claude-haiku-4-5", "claude-code", "anthropic", 1.0, 5.0, 25),
    ("gemini", "gemini-2.5-flash", "gemini", None, 0.3, 2.5, 15),
)


def synthetic(n: int, days: int = 30, payload_bytes: int = 1500, seed: int = 1) -> Iterator[dict[str, Any]]:
    """`n` plausible records spread over `days` days of November 2026, in time order, with payloads of about
    `payload_bytes` (a short chat: request, upstream request and both answers)."""
    rng = random.Random(seed)
    weights = [m[-1] for m in MODELS]
    text = "x" * max(0, payload_bytes // 4)
    for i in range(n):
        day = f"2026-11-{1 + i * days // n:02d}"
        provider, model, rule, client, per_input, per_output, _ = rng.choices(MODELS, weights)[0]
        failed = rng.random() < 0.02
        prompt, completion = rng.randint(50, 20000), rng.randint(1, 2000)
        stream = rng.random() < 0.5
        payload = None
        if payload_bytes:
            ask = {"model": model, "messages": [{"role": "user", "content": text}]}
            answer = {"choices": [{"message": {"role": "assistant", "content": text}}]}
            payload = {
                "client_request": ask,
                "upstream_request": ask,
                "upstream_response": answer,
                "client_response": answer,
            }
        seconds = i * days * 86400 // n % 86400
        yield record(
            day,
            rule=rule,
            provider=provider,
            model=model,
            client_format=client,
            status=rng.choice((429, 500, 502)) if failed else 200,
            error="upstream failed" if failed else None,
            latency=round(rng.lognormvariate(6.5, 0.6), 1),
            ttft=round(rng.lognormvariate(5.5, 0.5), 1) if stream else None,
            prompt=prompt,
            completion=completion,
            cost=None
            if provider == "gemini" and failed
            else round((prompt * per_input + completion * per_output) / 1e6, 10),
            cached=rng.choice((0, prompt // 2)),
            payload=payload,
            at=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000",
        )


def write_synthetic(folder: Path, n: int, days: int = 30, payload_bytes: int = 1500, seed: int = 1) -> int:
    """Write `synthetic` records to day files as the recorder would; the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    size, day, out = 0, None, None
    try:
        for rec in synthetic(n, days, payload_bytes, seed):
            if rec["timestamp"][:10] != day:
                if out is not None:
                    out.close()
                day = rec["timestamp"][:10]
                out = (folder / f"ai-proxy-{day}.jsonl").open("ab")
            line = orjson.dumps(rec) + b"\n"
            size += len(line)
            assert out is not None
            out.write(line)
    finally:
        if out is not None:
            out.close()
    return size
