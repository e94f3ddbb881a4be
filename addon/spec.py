"""The rules.yaml schema (Kong's ai-proxy keys) as pydantic models, and the one URL helper providers share.

Pure code with no knowledge of how rules are loaded or matched (rules.py) and no import of the providers, which
import this module for the types of their options.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import watchdog
from .errors import bad_request

ROUTE_TYPES = ("llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings", "llm/v1/responses", "preserve")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


# --------------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them so a user learns at load, not at 3 a.m.
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchSpec(_Strict):
    host: Annotated[str, Field(min_length=1)]
    path: str | None = None
    methods: list[str] | None = None
    filter: str | None = None

    @field_validator("path")
    @classmethod
    def _path_absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v

    @field_validator("methods")
    @classmethod
    def _upper(cls, v: list[str] | None) -> list[str] | None:
        return [m.upper() for m in v] if v else None


class GeminiOptions(_Strict):
    api_endpoint: str | None = None
    project_id: str | None = None
    location_id: str | None = None
    endpoint_id: str | None = None


class BedrockOptions(_Strict):
    aws_region: str | None = None
    aws_assume_role_arn: str | None = None
    aws_role_session_name: str | None = None
    aws_sts_endpoint_url: str | None = None
    embeddings_normalize: bool | None = None
    performance_config_latency: str | None = None


class HuggingFaceOptions(_Strict):
    use_cache: bool | None = None
    wait_for_model: bool | None = None


class CohereOptions(_Strict):
    embedding_input_type: str | None = None
    wait_for_model: bool | None = None


class ModelOptions(_Strict):
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    anthropic_version: str | None = None
    input_cost: Annotated[float, Field(ge=0)] | None = None
    output_cost: Annotated[float, Field(ge=0)] | None = None
    upstream_url: str | None = None
    upstream_path: str | None = None
    azure_instance: str | None = None
    azure_deployment_id: str | None = None
    azure_api_version: str | None = None
    llama2_format: Literal["raw", "ollama", "openai"] | None = None
    llama_template: Literal["llama2", "llama3"] | None = None
    mistral_format: Literal["openai", "ollama"] | None = None
    cohere_api: Literal["v1", "v2"] | None = None
    embeddings_dimensions: Annotated[int, Field(gt=0)] | None = None
    # route_type llm/v1/responses translated: OpenAI's hosted tools (web_search...) refused with a 400 (the default)
    # or dropped from the request and reported.
    hosted_tools: Literal["refuse", "drop"] | None = None
    gemini: GeminiOptions | None = None
    bedrock: BedrockOptions | None = None
    huggingface: HuggingFaceOptions | None = None
    cohere: CohereOptions | None = None

    @field_validator("upstream_url")
    @classmethod
    def _url_shape(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as http://127.0.0.1:9000/v1/messages")
        return v

    @field_validator("upstream_path")
    @classmethod
    def _path_shape(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v


ModelName = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]  # it may reach a header


class ModelSpec(_Strict):
    provider: Annotated[str, Field(min_length=1)]  # checked against the provider registry when the rule compiles
    name: str | None = None
    # Client model name (exact or glob) -> provider model, first match wins: `claude-*haiku*: gpt-4o-mini`.
    aliases: dict[Annotated[str, Field(min_length=1)], ModelName] = {}
    options: ModelOptions = ModelOptions()


class AuthSpec(_Strict):
    header_name: str | None = None
    header_value: str | None = None
    param_name: str | None = None
    param_value: str | None = None
    param_location: Literal["query", "body"] | None = None
    allow_override: bool = False
    azure_use_managed_identity: bool = False
    azure_client_id: str | None = None
    azure_client_secret: str | None = None
    azure_tenant_id: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    gcp_use_service_account: bool = False
    gcp_service_account_json: str | None = None

    @model_validator(mode="after")
    def _pairs(self) -> AuthSpec:
        if self.azure_use_managed_identity or self.azure_client_id or self.azure_client_secret or self.azure_tenant_id:
            # Accepted by Kong's schema; refused here rather than silently sending no credentials at all.
            raise ValueError(
                "Azure Entra ID (azure_use_managed_identity, azure_client_id/secret, azure_tenant_id) is not "
                "supported yet: use header_name: api-key with the resource's key"
            )
        if (self.header_name is None) != (self.header_value is None):
            raise ValueError("header_name and header_value go together")
        if (self.param_name is None) != (self.param_value is None):
            raise ValueError("param_name and param_value go together")
        if self.param_name is not None and self.param_location is None:
            raise ValueError("param_location (query or body) is required with param_name")
        return self


class LoggingSpec(_Strict):
    log_statistics: bool = True
    log_payloads: bool = False


class RuleSpec(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
    match: MatchSpec
    route_type: Literal[ROUTE_TYPES] = "llm/v1/chat"  # type: ignore[valid-type]
    llm_format: Literal["openai", "anthropic", "gemini", "bedrock", "cohere", "huggingface"] = "openai"
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    max_request_body_size: Annotated[int, Field(gt=0)] = 8 * 1024 * 1024
    model_name_header: bool = True
    # Upstream timeouts in milliseconds (Kong's connect_timeout/read_timeout; idle and total are ours).
    connect_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_CONNECT_MS
    read_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_READ_MS  # time to the response's first byte
    idle_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_IDLE_MS  # silence between two stream chunks
    total_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_TOTAL_MS
    model: ModelSpec
    auth: AuthSpec | None = None
    logging: LoggingSpec = LoggingSpec()


class RulesFile(_Strict):
    rules: list[RuleSpec]


def encode_url_value(value: str) -> str:
    """Percent-encode a request-supplied value so it stays inside one URL path segment."""
    if value in (".", ".."):
        raise bad_request(f"template value {value!r} is not allowed in a URL", code="invalid_template_value")
    return quote(value, safe="")
