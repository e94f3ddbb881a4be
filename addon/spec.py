"""The rules.yaml schema (Kong's ai-proxy keys) as pydantic models, and the one URL helper providers share.

Pure code with no knowledge of how rules are loaded or matched (rules.py) and no import of the providers, which
import this module for the types of their options. Each provider declares its own model.options keys
(Provider.option_fields); the providers package hands them to assemble_options once all have registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

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


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError("must start with '/'")
    return path


AbsolutePath = Annotated[str, AfterValidator(_absolute)]


class MatchSpec(_Strict):
    host: Annotated[str, Field(min_length=1)]
    path: AbsolutePath | None = None
    methods: list[str] | None = None
    filter: str | None = None

    @field_validator("methods")
    @classmethod
    def _upper(cls, v: list[str] | None) -> list[str] | None:
        return [m.upper() for m in v] if v else None


class OptionsModel(_Strict):
    """Base of a provider's own group of options (model.options.<provider>: {...})."""


class CommonOptions(_Strict):
    """The model.options every provider reads; ModelOptions adds the keys the providers declare as their own."""

    max_tokens: Annotated[int, Field(gt=0)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    input_cost: Annotated[float, Field(ge=0)] | None = None
    output_cost: Annotated[float, Field(ge=0)] | None = None
    upstream_url: str | None = None
    upstream_path: AbsolutePath | None = None
    embeddings_dimensions: Annotated[int, Field(gt=0)] | None = None
    # route_type llm/v1/responses translated: OpenAI's hosted tools (web_search...) refused with a 400 (the default)
    # or dropped from the request and reported.
    hosted_tools: Literal["refuse", "drop"] | None = None
    # Prompt caching on providers that cache only where told (Anthropic, Bedrock): `auto` adds cache breakpoints
    # (system prompt and tools, the last turns) within the provider's limit, besides the client's own; `client`
    # (the default) sends the client's alone. See cache_breakpoints.py.
    cache_breakpoints: Literal["client", "auto"] | None = None
    # Prices in USD per 1M tokens of prompt read from the provider's cache and written to it (with input_cost and
    # output_cost; unset: cache reads and writes at input_cost).
    cache_read_cost: Annotated[float, Field(ge=0)] | None = None
    cache_write_cost: Annotated[float, Field(ge=0)] | None = None

    @field_validator("upstream_url")
    @classmethod
    def _url_shape(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as http://127.0.0.1:9000/v1/messages")
        return v


ModelName = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]  # it may reach a header


class ModelSpec(_Strict):
    provider: Annotated[str, Field(min_length=1)]  # checked against the provider registry when the rule compiles
    name: str | None = None
    # Client model name (exact or glob) -> provider model, first match wins: `claude-*haiku*: gpt-4o-mini`.
    aliases: dict[Annotated[str, Field(min_length=1)], ModelName] = {}
    options: ModelOptions = Field(default_factory=lambda: ModelOptions())


class AuthSpec(_Strict):
    header_name: str | None = None
    header_value: str | None = None
    param_name: str | None = None
    param_value: str | None = None
    param_location: Literal["query", "body"] | None = None
    allow_override: bool = False
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    gcp_use_service_account: bool = False
    gcp_service_account_json: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, data: Any) -> Any:
        """Keys Kong's schema accepts that no provider implements yet: refused with the provider's own message
        (REFUSED_AUTH_KEYS) rather than silently sending no credentials at all."""
        if isinstance(data, dict):
            for key, message in REFUSED_AUTH_KEYS.items():
                if data.get(key) not in (None, False):
                    raise ValueError(message)
            data = {k: v for k, v in data.items() if k not in REFUSED_AUTH_KEYS}
        return data

    @model_validator(mode="after")
    def _pairs(self) -> AuthSpec:
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
    # The client's format: openai, another client format (addon/formats) or a provider's native format, which
    # the rule's provider must fit (checked when the rule compiles, against both registries).
    llm_format: Annotated[str, Field(min_length=1)] = "openai"
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    max_request_body_size: Annotated[int, Field(gt=0)] = 8 * 1024 * 1024
    model_name_header: bool = True
    # Upstream timeouts in milliseconds (Kong's connect_timeout/read_timeout; idle and total are ours).
    connect_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_CONNECT_MS
    read_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_READ_MS  # time to the response's first byte
    idle_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_IDLE_MS  # silence between two stream chunks
    total_timeout: Annotated[int, Field(gt=0)] = watchdog.DEFAULT_TOTAL_MS
    # A translated request whose translation cannot carry something to the provider (the loss report,
    # x-ai-proxy-dropped): `drop` sends it without and reports what was dropped; `refuse` answers 400 naming it.
    on_unsupported: Literal["drop", "refuse"] = "drop"
    model: ModelSpec
    auth: AuthSpec | None = None
    logging: LoggingSpec = LoggingSpec()


class RulesFile(_Strict):
    rules: list[RuleSpec]


# --------------------------------------------------------------------------------------------------------------
# What the providers declare (their own keys), assembled once they have registered
# --------------------------------------------------------------------------------------------------------------

# auth.<key> -> the message refusing it: keys a provider names but does not implement (filled as providers register).
REFUSED_AUTH_KEYS: dict[str, str] = {}

if TYPE_CHECKING:
    ModelOptions = CommonOptions  # with the providers' keys: assemble_options


def assemble_options(fields: Mapping[str, tuple[Any, Any]]) -> None:
    """Build ModelOptions from the common options and the providers' own keys (model.options.<key>: (type,
    default)), and complete the models that hold it. The providers package calls this once every provider has
    registered: this module imports no provider."""
    overlap = set(fields) & set(CommonOptions.model_fields)
    if overlap:
        raise TypeError(f"provider options {sorted(overlap)} shadow common options")
    model = create_model("ModelOptions", __base__=CommonOptions, __module__=__name__, **fields)  # type: ignore[call-overload]
    model.__doc__ = "model.options: the common options and each provider's own keys."
    globals()["ModelOptions"] = model
    for dependent in (ModelSpec, RuleSpec, RulesFile):
        dependent.model_rebuild(force=True)


def __getattr__(name: str) -> Any:
    if name == "ModelOptions":  # asked for before the providers registered: they assemble it as they load
        importlib.import_module(f"{__package__}.providers")
        if "ModelOptions" in globals():
            return globals()["ModelOptions"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def encode_url_value(value: str) -> str:
    """Percent-encode a request-supplied value so it stays inside one URL path segment."""
    if value in (".", ".."):
        raise bad_request(f"template value {value!r} is not allowed in a URL", code="invalid_template_value")
    return quote(value, safe="")
