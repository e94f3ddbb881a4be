"""JSON Schemas to Bedrock Converse: outputConfig.textFormat and strict toolSpecs adapted to the subset Bedrock's
structured outputs take (the one Anthropic documents for the same feature), with the relaxation reported."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.providers.bedrock.test_provider_bedrock import make_rule
from tests.support import schemas
from tests.support.bedrock import BedrockReply, FakeBedrock, bedrock_behind_proxy, converse_json
from tests.support.mitmdump import Mitmdump
from tests.support.rules import rule_spec, rules_text
from tests.support.schema_refusals import anthropic_problem, refusal
from tests.support.schemas import PYDANTIC_PLAIN, VALID_ORDER, ZOD, Order, pydantic_schema, structured
from tests.support.tools import client_through

RULE = make_rule()


@pytest.mark.parametrize("schema", [ZOD, pydantic_schema(), PYDANTIC_PLAIN], ids=["zod", "pydantic-parse", "pydantic"])
def test_structured_output_is_adapted(schema: dict) -> None:
    body, dropped = schemas.sent(RULE, structured(schema))
    sent = json.loads(body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])
    assert anthropic_problem(sent, "schema") is None and anthropic_problem(schema, "schema") is not None
    assert dropped and all(d.startswith("json_schema.") for d in dropped)


def test_zod_bounds_are_described() -> None:
    body, dropped = schemas.sent(RULE, structured(ZOD))
    sent = json.loads(body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])
    assert sent["properties"]["count"]["description"] == "{minimum: -9007199254740991, maximum: 9007199254740991}"
    assert "json_schema.minimum" in dropped


def test_strict_tools_only() -> None:
    for strict, adapted in ((True, True), (None, False)):
        fn = {"name": "f", "parameters": ZOD} | ({"strict": strict} if strict is not None else {})
        body, dropped = schemas.sent(RULE, {"messages": [{"role": "user", "content": "Hi"}], "tools": [
            {"type": "function", "function": fn}]})  # fmt: skip
        spec = body["toolConfig"]["tools"][0]["toolSpec"]
        if adapted:
            assert anthropic_problem(spec["inputSchema"]["json"], "s") is None and "tool_schema.minimum" in dropped
        else:
            assert spec["inputSchema"]["json"] == ZOD and dropped == []


# ---- end to end: the openai SDK's .parse through mitmdump to a fake Bedrock that refuses what Bedrock refuses ----

KEY_ID, SECRET, REGION = "AKIDE2ESCHEMAFAKE001", "e2e/schema+secret/000000000000000000001", "us-east-1"
MODEL = "anthropic.claude-sonnet-4-5-v1:0"


def rules_yaml(fake: FakeBedrock) -> str:
    rule = rule_spec("bedrock-schema", "bedrock-schema.internal", "bedrock", MODEL,
                     {"upstream_url": fake.url, "bedrock": {"aws_region": REGION}})  # fmt: skip
    keys = {"aws_access_key_id": "${E2E_AWS_KEY_ID}", "aws_secret_access_key": "${E2E_AWS_SECRET}"}
    return rules_text({**rule, "auth": keys, "logging": {"log_payloads": True}})


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mitmdump, FakeBedrock]]:
    env = {"E2E_AWS_KEY_ID": KEY_ID, "E2E_AWS_SECRET": SECRET}
    with bedrock_behind_proxy(tmp_path_factory.mktemp("e2e-bedrock-schema"), {KEY_ID: SECRET}, REGION, rules_yaml,
                              env) as both:  # fmt: skip
        yield both


@pytest.mark.e2e
def test_parse_with_field_ge_through_the_proxy(proxied: tuple[Mitmdump, FakeBedrock]) -> None:
    proxy, fake = proxied
    fake.reset()
    client = client_through(proxy, "bedrock-schema.internal")
    fake.queue(BedrockReply(json=converse_json(json.dumps(VALID_ORDER))))
    raw = client.chat.completions.with_raw_response.parse(
        model=MODEL, messages=[{"role": "user", "content": "order"}], response_format=Order
    )
    assert raw.parse().choices[0].message.parsed == Order.model_validate(VALID_ORDER)
    assert "json_schema.minimum" in raw.headers["x-ai-proxy-dropped"]

    fake.queue(BedrockReply(json=converse_json(json.dumps({**VALID_ORDER, "ratio": 0}))))  # gt=0 broken
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "x"}], response_format=Order)
    assert e.value.status_code == 502 and "$.ratio" in str(e.value)


def test_the_fake_refuses_the_raw_schema_like_bedrock() -> None:
    text_format = {"type": "json_schema", "structure": {"jsonSchema": {"schema": json.dumps(ZOD)}}}
    refused = refusal("/model/m/converse", {"outputConfig": {"textFormat": text_format}})
    assert refused is not None and refused[0] == "bedrock"
    tool = {"toolSpec": {"name": "f", "strict": True, "inputSchema": {"json": ZOD}}}
    assert refusal("/model/m/converse-stream", {"toolConfig": {"tools": [tool]}}) is not None
    tool["toolSpec"]["strict"] = False
    assert refusal("/model/m/converse", {"toolConfig": {"tools": [tool]}}) is None
