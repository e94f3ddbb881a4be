"""A client's JSON Schema adapted to the subset a provider's schema compiler takes. Pure code: no I/O.

Providers that constrain decoding to a schema (structured output, strict tools) accept only part of JSON Schema and
answer 400 to the rest (Anthropic: "For 'integer' type, property 'minimum' is not supported"). Each such provider
declares its `Subset` in its own package; `adapt` walks the client's schema and returns one the provider takes:
- a keyword the provider does not take moves into the node's `description` as text (`{minimum: 1, maximum: 10}`),
  as the providers' own SDKs do (anthropic-sdk-python `transform_schema`), so the model still reads it;
- lossless rewrites where the provider needs them: `type: [a, b]` as `anyOf`, `#/definitions/` refs as `#/$defs/`,
  a `$ref` with siblings the provider refuses inlined, a `const` as a one-value `enum`, `allOf` merged;
- every keyword moved or loosened is reported once in the loss report as `<prefix>.<keyword>`: `json_schema.minimum`
  (the client's structured-output schema), `tool_schema.maxLength` (a tool's parameters).
The client's own schema is never modified (the answer is checked against it later, see schema_check.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

STRUCTURED = "json_schema"  # loss-report prefix for response_format's schema
TOOL = "tool_schema"  # loss-report prefix for a (strict) tool's parameters

# Keywords read by the walk itself (never moved to the description as such).
_STRUCTURAL = frozenset(
    {"type", "properties", "required", "items", "prefixItems", "anyOf", "oneOf", "allOf", "$ref", "$defs",
     "definitions", "additionalProperties", "enum", "const", "format", "description", "title"}
)  # fmt: skip
# Bookkeeping with no effect on which values are valid: removed without a report.
_METADATA = frozenset({"$schema", "$id", "$comment", "$anchor"})
_MAX_DEPTH = 64
_GRAMMAR_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)


@dataclass(frozen=True, slots=True)
class Subset:
    """What one provider's schema compiler takes, beyond the structural keywords every subset handles."""

    provider: str
    keywords: frozenset[str]  # other keywords kept as they are (pattern, minItems, default, ...)
    formats: frozenset[str] | None = None  # string formats kept (None: every format)
    limits: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)  # keyword -> values kept
    close_objects: bool = False  # every object gets additionalProperties: false (the provider demands it)
    type_lists: bool = True  # takes `type: ["string", "null"]`; else rewritten as anyOf
    one_of: bool = True  # takes oneOf; else read as anyOf (reported: it no longer excludes)
    all_of: bool = True  # takes allOf; else its members are merged into the node
    all_of_refs: bool = True  # takes a $ref as an allOf member; else the definition is inlined there
    recursion: bool = True  # takes recursive $refs; else a 400
    ref_siblings: frozenset[str] | None = None  # keywords allowed next to a $ref (None: any); else inlined
    enum_values: tuple[type, ...] = (str, int, float, bool, type(None))  # enum members it takes
    const: bool = True  # takes const; else a one-value enum


def closed_grammar(provider: str) -> Subset:
    """The subset of the grammar compilers that take closed objects and no bounds: the basic types, enum, const,
    anyOf, allOf (without $ref members), local $ref/$defs (not recursive), default, required, pattern, ten string
    formats, minItems 0 or 1, additionalProperties false on every object (Claude's structured outputs and strict
    tools, on Anthropic's API and on Bedrock: see each provider's schema.py for the sources)."""
    return Subset(
        provider=provider,
        keywords=frozenset({"default", "pattern", "minItems"}),
        formats=_GRAMMAR_FORMATS,
        limits={"minItems": lambda v: v in (0, 1)},
        close_objects=True,
        type_lists=False,
        one_of=False,
        all_of_refs=False,
        recursion=False,
        ref_siblings=frozenset({"description", "title"}),
    )


def adapt(schema: dict[str, Any], subset: Subset, where: str, prefix: str, dropped: list[str]) -> dict[str, Any]:
    """The client's `schema` as `subset` takes it; what was moved or loosened goes to `dropped` as prefix.keyword.
    A schema that cannot be adapted (a recursive one where the provider takes none) is a 400 naming `where`."""
    return _Walk(schema, subset, where, prefix, dropped).root()


class _Walk:
    def __init__(self, schema: dict[str, Any], subset: Subset, where: str, prefix: str, dropped: list[str]) -> None:
        self.schema = schema
        self.subset = subset
        self.where = where
        self.prefix = prefix
        self.dropped = dropped
        defs: dict[str, Any] = {}
        for key in ("definitions", "$defs"):
            if isinstance(schema.get(key), dict):
                defs.update(schema[key])
        self.defs = defs
        self.recursive = _recursive(defs)

    def report(self, keyword: str) -> None:
        report(self.dropped, self.prefix, keyword)

    def root(self) -> dict[str, Any]:
        out = self.node({k: v for k, v in self.schema.items() if k not in ("$defs", "definitions")}, self.where, 0)
        if self.defs:
            used = self._used_defs(out)
            if used:
                out["$defs"] = {name: self.node(self.defs[name], f"{self.where}.$defs.{name}", 1) for name in used}
        return out

    def _used_defs(self, out: dict[str, Any]) -> list[str]:
        """The definitions still referenced once refs have been inlined (transitively), in their order."""
        seen: set[str] = set()
        todo = _refs(out)
        while todo:
            name = todo.pop()
            if name in seen or name not in self.defs:
                continue
            seen.add(name)
            todo.extend(_refs(self.defs[name]))
        return [name for name in self.defs if name in seen]

    # ---- one node ---------------------------------------------------------------------------------------------

    def node(self, node: Any, where: str, depth: int, inlining: frozenset[str] = frozenset()) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise bad_request(f"{where}: schema nested too deep for provider {self.subset.provider}", param=where)
        if node is True:
            return {}
        if not isinstance(node, dict):
            raise bad_request(f"{where} must be a JSON Schema object", param=where)
        node = {k: v for k, v in node.items() if k not in _METADATA}
        if "$ref" in node:
            return self.ref(node, where, depth, inlining)
        kind = node.get("type")
        if isinstance(kind, list) and not self.subset.type_lists:
            return self.node(_type_list_as_any_of(node, kind), where, depth, inlining)
        if "allOf" in node and not self.subset.all_of:
            return self.node(self.merged_all_of(node, where, depth, inlining), where, depth, inlining)
        out: dict[str, Any] = {}
        notes: dict[str, Any] = {}
        for key, value in node.items():
            if key in _STRUCTURAL:
                continue
            check = self.subset.limits.get(key)
            if key in self.subset.keywords and (check is None or check(value)):
                out[key] = value
            else:
                notes[key] = value
        if kind is not None:
            out["type"] = kind
        self.literals(node, out, notes)
        fmt = node.get("format")
        if fmt is not None:
            if self.subset.formats is None or (isinstance(fmt, str) and fmt in self.subset.formats):
                out["format"] = fmt
            else:
                notes["format"] = fmt
        self.children(node, out, notes, where, depth, inlining)
        self.objects(node, out, where, depth, inlining)
        return self.described(node, out, notes)

    def literals(self, node: dict[str, Any], out: dict[str, Any], notes: dict[str, Any]) -> None:
        enum = node.get("enum")
        if "const" in node:
            value = node["const"]
            if self.subset.const:
                out["const"] = value
            elif self.member(value) and enum is None:
                enum = [value]
            else:
                notes["const"] = value
        if enum is not None:
            if isinstance(enum, list) and enum and all(self.member(v) for v in enum):
                out["enum"] = enum
            else:
                notes["enum"] = enum

    def member(self, value: Any) -> bool:
        """Whether the provider takes `value` in an enum (a bool is no number here)."""
        kinds = self.subset.enum_values
        return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))

    def children(
        self,
        node: dict[str, Any],
        out: dict[str, Any],
        notes: dict[str, Any],
        where: str,
        depth: int,
        inl: frozenset[str],
    ) -> None:
        properties = node.get("properties")
        if properties is not None:
            if not isinstance(properties, dict):
                raise bad_request(f"{where}.properties must be an object", param=f"{where}.properties")
            out["properties"] = {
                name: self.node(sub, f"{where}.properties.{name}", depth + 1, inl) for name, sub in properties.items()
            }
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = [r for r in required if isinstance(r, str)]
        items = node.get("items")
        if isinstance(items, list):  # the draft-07 tuple form
            node = {**node, "prefixItems": items}
        elif items is not None and items is not False:
            out["items"] = self.node(items, f"{where}.items", depth + 1, inl)
        elif items is False:
            out["items"] = False
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            members = node.get(key)
            if members is None:
                continue
            if not isinstance(members, list) or not members:
                raise bad_request(f"{where}.{key} must be a non-empty array", param=f"{where}.{key}")
            if key == "prefixItems" and key not in self.subset.keywords:
                notes[key] = members  # no tuples: the items stay unconstrained (the description says what was asked)
                continue
            if key == "allOf" and not self.subset.all_of_refs:
                members = [self.dereferenced(m, f"{where}.allOf[{i}]", inl) for i, m in enumerate(members)]
            converted = [self.node(m, f"{where}.{key}[{i}]", depth + 1, inl) for i, m in enumerate(members)]
            if key == "oneOf" and not self.subset.one_of:
                self.report("oneOf")
                key = "anyOf"
            out[key] = out.get(key, []) + converted

    def objects(self, node: dict[str, Any], out: dict[str, Any], where: str, depth: int, inl: frozenset[str]) -> None:
        extra = node.get("additionalProperties")
        is_object = node.get("type") == "object" or "properties" in node
        if self.subset.close_objects:
            if is_object:
                if extra is not None and extra is not False:
                    self.report("additionalProperties")
                out["additionalProperties"] = False
        elif isinstance(extra, bool):
            out["additionalProperties"] = extra
        elif isinstance(extra, dict):
            out["additionalProperties"] = self.node(extra, f"{where}.additionalProperties", depth + 1, inl)

    def described(self, node: dict[str, Any], out: dict[str, Any], notes: dict[str, Any]) -> dict[str, Any]:
        for key in ("title", "description"):
            if isinstance(node.get(key), str):
                out[key] = node[key]
        if notes:
            for key in notes:
                self.report(key)
            out["description"] = noted(out.get("description"), notes)
        return out

    # ---- references and merges ------------------------------------------------------------------------------

    def ref(self, node: dict[str, Any], where: str, depth: int, inlining: frozenset[str]) -> dict[str, Any]:
        name = self.ref_name(node["$ref"], where)
        if name in self.recursive and not self.subset.recursion:
            raise bad_request(
                f"{where}: recursive schemas (#/$defs/{name}) are not supported by provider {self.subset.provider}",
                param=where,
            )
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        allowed = self.subset.ref_siblings
        if allowed is None or set(siblings) <= allowed:
            return {"$ref": f"#/$defs/{name}", **siblings}
        if name in inlining or name in self.recursive:
            # A recursive target cannot be inlined: its siblings go, the reference stays.
            for key in siblings:
                self.report(key)
            return {"$ref": f"#/$defs/{name}"}
        return self.node({**self.defs[name], **siblings}, where, depth + 1, inlining | {name})

    def ref_name(self, ref: Any, where: str) -> str:
        for prefix in ("#/$defs/", "#/definitions/"):
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref[len(prefix) :].replace("~1", "/").replace("~0", "~")
                if isinstance(self.defs.get(name), dict):
                    return name
        raise bad_request(
            f"{where}: $ref {ref!r} cannot be resolved (only local #/$defs/... refs can)", param=f"{where}.$ref"
        )

    def dereferenced(self, member: Any, where: str, inlining: frozenset[str]) -> Any:
        """An allOf member with its $ref replaced by the definition (merged with the member's other keywords)."""
        if not (isinstance(member, dict) and "$ref" in member):
            return member
        name = self.ref_name(member["$ref"], where)
        if name in inlining or name in self.recursive:
            raise bad_request(
                f"{where}: a recursive $ref in allOf is not supported by provider {self.subset.provider}", param=where
            )
        return {**self.defs[name], **{k: v for k, v in member.items() if k != "$ref"}}

    def merged_all_of(self, node: dict[str, Any], where: str, depth: int, inlining: frozenset[str]) -> dict[str, Any]:
        """allOf for a provider that has none: the members' keywords merged into the node (properties and
        required united; for any other keyword the node's own value, then the first member's, wins)."""
        members = node.get("allOf")
        if not isinstance(members, list) or not members:
            raise bad_request(f"{where}.allOf must be a non-empty array", param=f"{where}.allOf")
        out = {k: v for k, v in node.items() if k != "allOf"}
        for i, member in enumerate(members):
            member = self.dereferenced(member, f"{where}.allOf[{i}]", inlining)
            if not isinstance(member, dict):
                raise bad_request(f"{where}.allOf[{i}] must be a JSON Schema object", param=f"{where}.allOf[{i}]")
            for key, value in member.items():
                if key == "properties" and isinstance(value, dict):
                    out["properties"] = {**value, **(out.get("properties") or {})}
                elif key == "required" and isinstance(value, list):
                    out["required"] = list(dict.fromkeys([*(out.get("required") or []), *value]))
                else:
                    out.setdefault(key, value)
        return out


def _type_list_as_any_of(node: dict[str, Any], kinds: list[Any]) -> dict[str, Any]:
    """`{"type": ["string", "null"], ...}` as `{"anyOf": [{"type": "string", ...}, {"type": "null"}]}`: the
    annotations stay on the node, each type's own keywords go to its branch."""
    annotations = {k: v for k, v in node.items() if k in ("description", "title", "default")}
    rest = {k: v for k, v in node.items() if k not in annotations and k != "type"}
    branches = [{"type": k} if k == "null" else {"type": k, **rest} for k in kinds]
    return {**annotations, "anyOf": branches}


def report(dropped: list[str], prefix: str, keyword: str) -> None:
    """`<prefix>.<keyword>` in the loss report, once."""
    what = f"{prefix}.{keyword}"
    if what not in dropped:
        dropped.append(what)


def noted(description: Any, notes: Mapping[str, Any]) -> str:
    """The description with what the provider could not take appended, as the providers' SDKs write it."""
    text = "{" + ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in notes.items()) + "}"
    return f"{description}\n\n{text}" if isinstance(description, str) and description else text


def _refs(node: Any) -> list[str]:
    """The names of the local definitions `node` refers to."""
    out: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                for prefix in ("#/$defs/", "#/definitions/"):
                    if ref.startswith(prefix):
                        out.append(ref[len(prefix) :].replace("~1", "/").replace("~0", "~"))
            stack.extend(v for k, v in item.items() if k not in ("enum", "const", "default", "examples"))
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _recursive(defs: Mapping[str, Any]) -> frozenset[str]:
    """The definitions that reach themselves through $refs."""
    graph = {name: set(_refs(sub)) for name, sub in defs.items()}
    out = set()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            if name == start:
                out.add(start)
                break
            if name in seen or name not in graph:
                continue
            seen.add(name)
            todo.extend(graph[name])
    return frozenset(out)
