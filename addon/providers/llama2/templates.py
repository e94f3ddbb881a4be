"""The Llama chat prompt templates, for raw text-generation endpoints: Llama 2's `[INST]`/`<<SYS>>` and Llama 3's
role headers (docs/providers.md §9), every turn kept, assistant turns included; and the echo/stop-sequence cleanup
of the text those endpoints answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import bad_request
from ...openai_format import CHAT, single_prompt, text_of
from ..base import Call

if TYPE_CHECKING:
    from ...spec import ModelOptions

# ---- Llama 2: meta-llama/llama llama/generation.py::chat_completion ----
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
BOS, EOS = "<s>", "</s>"
# ---- Llama 3: meta-llama/llama3 llama/tokenizer.py::ChatFormat ----
BEGIN_OF_TEXT = "<|begin_of_text|>"
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
EOT = "<|eot_id|>"

# The token that ends a turn in each template: always a stop sequence (servers do not all stop on it).
END_OF_TURN = {"llama2": EOS, "llama3": EOT}
TEMPLATE_START = {"llama2": BOS, "llama3": BEGIN_OF_TEXT}


def template_of(options: ModelOptions) -> str:
    return options.llama_template or "llama2"


def _text(m: dict[str, Any], i: int) -> str:
    content = m.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part["type"] != "text":
                where = f"messages[{i}].content[{j}]"
                raise bad_request(f"{where}: '{part['type']}' parts cannot go into a raw llama prompt", param=where)
    if m.get("tool_calls"):
        raise bad_request(
            f"messages[{i}]: tool calls are not supported by provider llama2 (raw): use llama2_format ollama or openai",
            param=f"messages[{i}].tool_calls",
        )
    return text_of(content)


def _role(m: dict[str, Any], i: int) -> str:
    role = m["role"]
    if role == "developer":
        return "system"
    if role not in ("system", "user", "assistant"):
        raise bad_request(
            f"messages[{i}]: role '{role}' is not supported by provider llama2 (raw)"
            + (": use llama2_format ollama or openai for tools" if role in ("tool", "function") else ""),
            param=f"messages[{i}].role",
        )
    return role


def render_llama2(messages: list[dict[str, Any]]) -> str:
    """The Llama 2 chat prompt: every system message in the first user turn's <<SYS>> block; consecutive turns of
    one role merged (the template needs strict user/assistant alternation, starting and ending with the user);
    every completed exchange `<s>[INST] user [/INST] assistant </s>`, the last user turn `<s>[INST] user [/INST]`."""
    system: list[str] = []
    turns: list[list[str]] = []  # [role, text]
    for i, m in enumerate(messages):
        role = _role(m, i)
        text = _text(m, i).strip()
        if role == "system":
            if text:
                system.append(text)
        elif turns and turns[-1][0] == role:
            turns[-1][1] += "\n\n" + text
        else:
            turns.append([role, text])
    if not turns or turns[0][0] != "user":
        raise bad_request("the llama2 template needs a user message before any assistant message", param="messages")
    if turns[-1][0] != "user":
        raise bad_request("the llama2 template needs the conversation to end with a user message", param="messages")
    if system:
        turns[0][1] = B_SYS + "\n\n".join(system) + E_SYS + turns[0][1]
    out = [
        f"{BOS}{B_INST} {turns[k][1].strip()} {E_INST} {turns[k + 1][1].strip()} {EOS}"
        for k in range(0, len(turns) - 1, 2)
    ]
    out.append(f"{BOS}{B_INST} {turns[-1][1].strip()} {E_INST}")
    return "".join(out)


def render_llama3(messages: list[dict[str, Any]]) -> str:
    """The Llama 3 chat prompt: every message under its role header, in order, then an open assistant header."""
    out = [BEGIN_OF_TEXT]
    for i, m in enumerate(messages):
        out.append(f"{START_HEADER}{_role(m, i)}{END_HEADER}\n\n{_text(m, i).strip()}{EOT}")
    out.append(f"{START_HEADER}assistant{END_HEADER}\n\n")
    return "".join(out)


def render(template: str, messages: list[dict[str, Any]]) -> str:
    return render_llama3(messages) if template == "llama3" else render_llama2(messages)


def raw_prompt(call: Call) -> str:
    template = template_of(call.options)
    if call.route_type == CHAT:
        return render(template, call.body["messages"])
    prompt = single_prompt(call.body)
    if prompt.startswith(TEMPLATE_START[template]):
        return prompt  # already rendered by the client: sent as it is
    return render(template, [{"role": "user", "content": prompt}])


def strip_echo(text: str, prompt: str) -> str:
    """The generated text without an echo of the prompt (servers that ignore return_full_text: false)."""
    if text.startswith(prompt):
        return text[len(prompt) :].lstrip()
    if text.startswith((BOS, B_INST, BEGIN_OF_TEXT, START_HEADER)):
        # An echo of a prompt rendered differently than ours: the answer follows the last end-of-prompt marker.
        for marker in (E_INST, END_HEADER):
            cut = text.rfind(marker)
            if cut >= 0:
                return text[cut + len(marker) :].lstrip()
    return text


def strip_stop(text: str, stops: list[str]) -> str:
    """TGI includes the stop sequence that ended the generation; OpenAI's text never contains it."""
    for stop in sorted(stops, key=len, reverse=True):
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text
