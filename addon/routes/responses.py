"""The routes of route type `llm/v1/responses` (OpenAI's Responses API): passed through to the providers whose own
API it is (Provider.serves_responses; usage, model and errors read on the side, as for every native format), and
translated to every other provider through the Responses client format (addon/formats/responses)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from .. import flows, jsonutil, loss, native
from ..errors import ProxyError
from ..exchange import resolve_model
from ..formats.responses.request import without_hosted_tools
from ..formats.responses.response import with_custom_calls
from ..native_responses import passthrough_for
from ..record import Exchange
from ..response_store import ResponseStore
from ..spec import ModelOptions, RuleSpec
from ..templating import TemplateContext
from .base import Services
from .native import Native
from .translated import Translated


class ResponsesPassthrough(Native):
    """The client's Responses request to a provider that serves the Responses API, as it is, with the rule's model
    (aliases applied) and credentials; the answer and its stream come back unchanged."""

    def adapter(self, ex: Exchange) -> native.NativeFormat:
        return passthrough_for(ex.provider)

    def prepare(
        self, ex: Exchange, client: native.NativeRequest, tctx: TemplateContext, options: ModelOptions
    ) -> tuple[native.NativeRequest, str | None]:
        fmt = passthrough_for(ex.provider)
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
            target = ex.provider.responses_model(options, model)
            if target and data.get("model") != target:
                data["model"] = target
                body = jsonutil.dumps(data)
            model = target
        else:
            model = ex.rule.resolve_model_name(tctx)
        return dataclasses.replace(client, path=path, query=query, body=body), model


_STORED = re.compile(r"/responses/([A-Za-z0-9_.-]+)$")
# Request fields a response object repeats (openai-python types/responses/response.py), when the client sent them.
ECHOED = ("instructions", "metadata", "temperature", "top_p", "max_output_tokens", "tools", "tool_choice",
          "parallel_tool_calls", "text", "previous_response_id")  # fmt: skip


@dataclass(slots=True)
class Turn:
    """What the translated route keeps of one Responses request between its hooks."""

    store: ResponseStore | None  # where the answer goes (None: `store: false`)
    conversation: list[Any]  # the input items of every turn chained so far, this one's included
    echo: dict[str, Any]
    custom_tools: frozenset[str]  # the names of the request's custom (freeform) tools
    dropped: list[str]  # hosted tools the rule drops
    writers: list[Any] = field(default_factory=list)  # the stream writer, once the stream has started


class ResponsesTranslated(Translated):
    """The Responses client format to any provider, with the proxy's own store of responses: `previous_response_id`
    chains conversations, `GET`/`DELETE /v1/responses/{id}` read and remove stored responses."""

    async def forward(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        request = flow.request
        store = services.response_store()
        found = _STORED.search(request.path.split("?", 1)[0])
        if found is not None and request.method in ("GET", "DELETE"):
            await self._stored(flow, ex, store, found.group(1))
            return
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method != "POST" and not path.endswith("/models") and "/models/" not in path:
            raise ProxyError(404, f"{request.method} {path} is not served by this route", type="invalid_request_error")
        turn = await self._turn(request, store, ex.rule.spec)
        if turn is not None:  # hosted tools the rule drops: refused before anything is sent where losses are
            loss.enforce(ex.rule.spec.on_unsupported, turn.dropped, ex.provider.name)
        await super().forward(services, flow, ex, captures)
        if ex.call is None or turn is None:
            return
        ex.route_state = turn
        loss.add(ex.call.dropped, turn.dropped)
        if ex.call.stream:
            factory = ex.call.writer

            def writer(*args: Any) -> Any:
                made = factory(*args)
                made.echo, made.custom_tools = turn.echo, turn.custom_tools
                turn.writers.append(made)
                return made

            ex.call.writer = writer

    async def _stored(self, flow: flows.HTTPFlow, ex: Exchange, store: ResponseStore, response_id: str) -> None:
        if flow.request.method == "GET":
            loaded = await store.load_async(response_id)
            answer = loaded[0] if loaded is not None else None
        else:
            deleted = await store.delete_async(response_id)
            answer = {"id": response_id, "object": "response", "deleted": True} if deleted else None
        if answer is None:
            raise ProxyError(404, f"Response with id '{response_id}' not found.", type="invalid_request_error")
        ex.status, ex.client_answer = 200, answer
        flow.response = flows.new_response(200, jsonutil.dumps(answer), {"content-type": "application/json"})

    async def _turn(self, request: flows.Request, store: ResponseStore, spec: RuleSpec) -> Turn | None:
        """The request's turn; with `previous_response_id`, the stored conversation goes before its input (the
        request's body is rewritten to hold it, as the provider needs the whole conversation)."""
        try:
            body = jsonutil.loads(flows.client_body(request, spec.max_request_body_size))
        except ValueError:
            return None  # the format's decoder answers it
        if not isinstance(body, dict):
            return None
        dropped: list[str] = []
        if spec.model.options.hosted_tools == "drop":
            body, dropped = without_hosted_tools(body)
            if dropped:
                request.content = jsonutil.dumps(body)
        items = _as_items(body.get("input"))
        previous = body.get("previous_response_id")
        if isinstance(previous, str) and items is None and body.get("input") is None:
            items = []  # the stored conversation alone
        if isinstance(previous, str) and items is not None:
            loaded = await store.load_async(previous)
            if loaded is None:
                raise ProxyError(
                    404,
                    f"Previous response with id '{previous}' not found.",
                    type="invalid_request_error",
                    param="previous_response_id",
                )
            items = [*loaded[1], *items]
            request.content = jsonutil.dumps(
                {**{k: v for k, v in body.items() if k != "previous_response_id"}, "input": items}
            )
        echo = {key: body[key] for key in ECHOED if body.get(key) is not None}
        keep = body.get("store") is not False
        echo["store"] = keep
        tools = body.get("tools") if isinstance(body.get("tools"), list) else []
        custom = frozenset(
            t["name"]
            for t in tools
            if isinstance(t, dict) and t.get("type") == "custom" and isinstance(t.get("name"), str)
        )
        return Turn(store if keep else None, items or [], echo, custom, dropped)

    def response(self, flow: flows.HTTPFlow, ex: Exchange) -> None:
        super().response(flow, ex)
        turn = ex.route_state
        if not isinstance(turn, Turn):
            return
        if turn.writers:
            final = turn.writers[0].final
            if final is not None:
                ex.client_answer = final  # the record keeps the response the client assembled
        elif isinstance(ex.client_answer, dict) and ex.client_answer.get("object") == "response":
            final = with_custom_calls(ex.client_answer, turn.custom_tools)
            final.update(turn.echo)
            _replace_body(flow, final)
        else:
            return
        if turn.store is not None and final is not None:
            # Reasoning items are kept only where they carry the provider's signed reasoning (the next turn's
            # provider needs it back); a summary alone is no provider's to take back.
            output = [i for i in final["output"] if i.get("type") != "reasoning" or i.get("encrypted_content")]
            turn.store.save_soon(final["id"], final, [*turn.conversation, *output])


def _as_items(value: Any) -> list[Any] | None:
    """A request's `input` as a list of items (a string is one user message); None for any other shape."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else None


def _replace_body(flow: flows.HTTPFlow, answer: dict[str, Any]) -> None:
    response = flow.response
    if response is not None:
        content = jsonutil.dumps(answer)
        response.raw_content = content
        response.headers["content-length"] = str(len(content))
