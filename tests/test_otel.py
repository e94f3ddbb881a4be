"""OpenTelemetry export: exchanges through the addon's hooks with ai_otlp_endpoint pointing at a local OTLP/HTTP
receiver, which decodes the protobuf it gets; the spans and metrics are checked against the exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import ctx, exceptions

from addon import metrics
from tests.support.addon import answer, exchange, running, stream_answer
from tests.support.fakes import anthropic_message, anthropic_stream
from tests.support.otlp import Receiver, attributes
from tests.test_metrics import CHAT, RULES

SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_spans_and_metrics_reach_the_collector(tmp_path: Path, receiver: Receiver) -> None:
    with running(tmp_path, RULES, ai_otlp_endpoint=receiver.url) as proxy:
        answer(proxy, exchange(proxy, CHAT), anthropic_message(cache_read_input_tokens=5))
        stream_answer(proxy, exchange(proxy, {**CHAT, "stream": True}), anthropic_stream(), seconds=2.0)
        refused = exchange(proxy, CHAT)
        answer(proxy, refused, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
        assert proxy.telemetry.otel is not None
        proxy.telemetry.otel.flush()  # what the SDK's background threads would send a little later

        plain, streamed, failed = sorted(receiver.spans(), key=lambda span: span.start_time_unix_nano)
        assert plain.name == streamed.name == failed.name == "chat claude-fake-1"
        assert plain.kind == SPAN_KIND_CLIENT
        a = attributes(plain.attributes)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "anthropic"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "claude-fake-1"
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (30, 12)
        assert a["ai_proxy.usage.cached_input_tokens"] == 5
        assert (a["ai_proxy.rule"], a["ai_proxy.client_format"], a["http.response.status_code"]) == (
            "claude", "openai", 200,
        )  # fmt: skip
        assert (a["server.address"], a["server.port"]) == ("127.0.0.1", 9)
        assert a["ai_proxy.cost_usd"] == pytest.approx((30 * 3 + 12 * 15) / 1e6)
        assert "error.type" not in a and plain.status.code != STATUS_CODE_ERROR
        assert plain.end_time_unix_nano >= plain.start_time_unix_nano > 0
        s = attributes(streamed.attributes)
        assert s["ai_proxy.stream"] is True and s["ai_proxy.time_to_first_chunk_ms"] >= 0
        f = attributes(failed.attributes)
        assert (f["error.type"], f["http.response.status_code"]) == ("429", 429)
        assert failed.status.code == STATUS_CODE_ERROR and failed.status.message == "slow down"
        resource = receiver.requests["/v1/traces"][0].resource_spans[0].resource
        assert attributes(resource.attributes)["service.name"] == "mitm-ai-proxy"

        m = receiver.metrics()
        usage = m["gen_ai.client.token.usage"]
        assert usage.unit == "{token}"
        points = {
            attributes(p.attributes)["gen_ai.token.type"]: p
            for p in usage.histogram.data_points
            if attributes(p.attributes).get("gen_ai.response.model") == "claude-fake-1"
        }
        assert (points["input"].sum, points["input"].count) == (30 + 25, 2)
        assert (points["output"].sum, points["output"].count) == (24, 2)
        assert list(points["input"].explicit_bounds) == list(metrics.TOKEN_BUCKETS)
        duration = m["gen_ai.client.operation.duration"]
        assert duration.unit == "s" and list(duration.histogram.data_points[0].explicit_bounds) == list(
            metrics.SECONDS_BUCKETS
        )
        by_error = {attributes(p.attributes).get("error.type"): p for p in duration.histogram.data_points}
        assert by_error["429"].count == 1 and by_error[None].sum == pytest.approx(0.25 + 2.0)
        ttft = m["gen_ai.client.operation.time_to_first_chunk"].histogram.data_points
        assert [p.count for p in ttft] == [1]
        requests = {
            attributes(p.attributes)["http.response.status_code"]: p.as_int
            for p in m["ai_proxy.requests"].sum.data_points
        }
        assert requests == {"200": 2, "429": 1}
        tokens = {attributes(p.attributes)["gen_ai.token.type"]: p.as_int for p in m["ai_proxy.tokens"].sum.data_points}
        assert tokens == {"input": 55, "output": 24, "cached_input": 5}
        [cost] = m["ai_proxy.cost"].sum.data_points
        assert cost.as_double == pytest.approx((30 * 3 + 12 * 15 + 25 * 3 + 12 * 15) / 1e6)


def test_endpoint_option(tmp_path: Path, receiver: Receiver) -> None:
    with running(tmp_path, RULES) as proxy:
        assert proxy.telemetry.otel is None  # off by default
        for bad in ("127.0.0.1:4318", "ftp://x", "http://"):
            with pytest.raises(exceptions.OptionsError, match="ai_otlp_endpoint"):
                ctx.options.update(ai_otlp_endpoint=bad)
        ctx.options.update(ai_otlp_endpoint=receiver.url + "/")
        assert proxy.telemetry.otel is not None and proxy.telemetry.otel.endpoint == receiver.url
        ctx.options.update(ai_otlp_endpoint="")
        assert proxy.telemetry.otel is None
