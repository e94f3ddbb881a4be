"""The routes of route type `llm/v1/responses` (OpenAI's Responses API): passed through to OpenAI and Azure, whose
own API it is (usage, model and errors read on the side, as for every native format), and translated to every other
provider through the Responses client format (addon/formats/responses)."""

from __future__ import annotations

import dataclasses

from .. import jsonutil, native
from ..exchange import resolve_model
from ..native_responses import PASSTHROUGH
from ..record import Exchange
from ..spec import ModelOptions
from ..templating import TemplateContext
from .native import Native


class ResponsesPassthrough(Native):
    """The client's Responses request to OpenAI or Azure as it is, with the rule's model (aliases applied) and
    credentials; the answer and its stream come back unchanged."""

    def adapter(self, ex: Exchange) -> native.NativeFormat:
        return PASSTHROUGH[ex.provider.name]

    def prepare(
        self, ex: Exchange, client: native.NativeRequest, tctx: TemplateContext, options: ModelOptions
    ) -> tuple[native.NativeRequest, str | None]:
        fmt = PASSTHROUGH[ex.provider.name]
        query = list(client.query)
        path = fmt.upstream_path(client.path, query, options)
        body = client.body
        try:
            data = jsonutil.loads(body) if body else None
        except ValueError:
            data = None  # the provider answers a body that is not JSON in its own words
        model = None
        if isinstance(data, dict):
            model = resolve_model(ex.rule, tctx, data)
            target = options.azure_deployment_id if ex.provider.name == "azure" else None
            target = target or model
            if target and data.get("model") != target:
                data["model"] = target
                body = jsonutil.dumps(data)
            model = target
        else:
            model = ex.rule.resolve_model_name(tctx)
        return dataclasses.replace(client, path=path, query=query, body=body), model
