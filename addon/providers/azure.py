"""Azure OpenAI: OpenAI bodies on a deployment-scoped URL with a mandatory api-version query parameter."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from ..errors import bad_request
from ..openai_format import CHAT, EMBEDDINGS
from ..spec import RuleSpec, encode_url_value
from .base import Call, UpstreamRequest, build_url, register
from .openai import OpenAI

if TYPE_CHECKING:
    from ..spec import ModelOptions

DEFAULT_API_VERSION = "2024-10-21"
# api-versions of the v1 surface (/openai/v1/...), which has no deployment in its paths (openai-python lib/azure.py).
V1_API_VERSIONS = frozenset({"preview", "latest"})
_INSTANCE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class Azure(OpenAI):
    name = "azure"
    api_base = None
    price_id = "azure"
    host_option_fields = frozenset({"azure_instance"})
    option_fields = {
        "azure_instance": (str | None, None),
        "azure_deployment_id": (str | None, None),
        "azure_api_version": (str | None, None),
    }
    # Entra ID (Kong's azure_* auth keys): refused rather than silently sending no credentials at all.
    refused_auth_keys = dict.fromkeys(
        ("azure_use_managed_identity", "azure_client_id", "azure_client_secret", "azure_tenant_id"),
        "Azure Entra ID (azure_use_managed_identity, azure_client_id/secret, azure_tenant_id) is not "
        "supported yet: use header_name: api-key with the resource's key",
    )

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        options = spec.model.options
        if not (options.upstream_url or options.azure_instance) and not unset & {
            "model.options.upstream_url",
            "model.options.azure_instance",
        }:
            return "model.options.azure_instance (or upstream_url) is required for azure"
        return super().check_rule(spec, unset)

    def preserve_target(
        self, options: ModelOptions, model: str | None, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[str | None, str]:
        """An OpenAI-style /v1/<operation> becomes Azure's deployment path, so an OpenAI SDK app reaches Azure."""
        deployment = options.azure_deployment_id or model
        if path.startswith("/v1/"):
            if not deployment:
                raise bad_request("no Azure deployment: set model.options.azure_deployment_id or send a model")
            path = f"/openai/deployments/{encode_url_value(deployment)}/{path[4:]}"
        query.setdefault("api-version", options.azure_api_version or DEFAULT_API_VERSION)
        return options.upstream_url or azure_base(options.azure_instance or ""), path

    def responses_base(self, options: ModelOptions) -> str:
        return azure_base(options.azure_instance or "")

    def responses_path(self, path: str, query: list[tuple[str, str]], options: ModelOptions) -> str:
        """Azure names the Responses path /openai/v1/responses (its v1 surface: api-version optional, preview/latest
        or none) or /openai/responses?api-version=2025-03-01-preview and later (the dated surface, what
        openai-python's AzureOpenAI calls with a dated api_version): a dated azure_api_version picks the second."""
        rest = path[3:] if path.startswith("/v1/") else path
        version = options.azure_api_version
        if version and not any(k == "api-version" for k, _ in query):
            query.append(("api-version", version))
        if version and version.lower() not in V1_API_VERSIONS:
            return "/openai" + rest
        return "/openai/v1" + rest

    def responses_model(self, options: ModelOptions, model: str | None) -> str | None:
        return options.azure_deployment_id or model  # a deployment is the model there

    def telemetry_name(self, upstream_url: str | None) -> str:
        return "azure.ai.openai"

    def requires_model(self, options: ModelOptions) -> bool:
        # The deployment in the URL selects the model; a body model is optional then.
        return not options.azure_deployment_id

    def asks_stream_usage(self, call: Call) -> bool:
        # stream_options exists from api-version 2024-09-01-preview on; older versions refuse it with a 400.
        return self._api_version(call) >= "2024-09-01"

    def _api_version(self, call: Call) -> str:
        options = call.options
        return (
            call.client_query.get("api-version")
            or options.azure_api_version
            or dict(parse_qsl(urlsplit(options.upstream_url or "").query)).get("api-version")
            or DEFAULT_API_VERSION
        )

    def build_request(self, call: Call) -> UpstreamRequest:
        options = call.options
        deployment = options.azure_deployment_id or call.model
        if not deployment:
            raise bad_request("no Azure deployment: set model.options.azure_deployment_id or model.name")
        operation = {CHAT: "chat/completions", EMBEDDINGS: "embeddings"}.get(call.route_type, "completions")
        api_version = self._api_version(call)
        body = self.body(call)
        if api_version.lower() in V1_API_VERSIONS:
            # The v1 surface (as openai-python's AzureOpenAI): no deployment in the path, it is the body's model.
            path = f"/openai/v1/{operation}"
            body["model"] = deployment
        else:
            # The deployment may come from the client's model: one path segment, never '.' or '..'.
            path = f"/openai/deployments/{encode_url_value(deployment)}/{operation}"
        base = "" if options.upstream_url else azure_base(options.azure_instance or "")
        url = build_url(options, base, path, {"api-version": api_version})
        return UpstreamRequest(url=url, body=body)


def azure_base(instance: str) -> str:
    """https://{instance}.openai.azure.com, for a valid resource name only (it becomes part of the host)."""
    if not _INSTANCE.match(instance):
        raise bad_request(f"invalid azure_instance {instance!r}")
    return f"https://{instance}.openai.azure.com"


AZURE = register(Azure())
