"""The compatibility gate: what a change to an event's JSON Schema does to the others.

Two sides can break. A consumer that generated its types from a committed schema breaks
when a field it reads disappears, changes type, or stops being always there. The stored
past breaks when the new shape requires a field that old events do not have. So, from a
committed (old) schema to the code's (new) one:

- removed property, retyped property (its set of JSON types, its format, enum or const
  changed, at any depth: nested objects and array items too), required property made
  optional, new required property, optional property made required → breaking;
- new optional property → additive.

Value constraints (lengths, patterns, ranges) and `additionalProperties` are not compared:
consumers are expected to be tolerant readers, ignoring properties they do not know.

A breaking change never edits a committed version: the version stays as committed, the
code declares version N+1 with an upcaster from N, and the committed files keep both."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Schema = dict[str, Any]
SchemaKey = tuple[str, int]  # (event type, schema version)


class ChangeKind(StrEnum):
    REMOVED = "removed"
    RETYPED = "retyped"
    NEWLY_REQUIRED = "new required property"
    NOW_REQUIRED = "made required"
    NOW_OPTIONAL = "made optional"
    ADDED = "new optional property"


ADDITIVE = frozenset({ChangeKind.ADDED})


@dataclass(frozen=True)
class Change:
    path: str  # e.g. "lines[].sku"
    kind: ChangeKind
    detail: str = ""

    @property
    def breaking(self) -> bool:
        return self.kind not in ADDITIVE

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


def compare(old: Schema, new: Schema) -> list[Change]:
    """Every difference that matters between two versions of one payload schema."""
    found: list[Change] = []
    _compare(old, new, "", _Roots(old, new), found)
    return found


def breaking_changes(old: Schema, new: Schema) -> list[Change]:
    return [change for change in compare(old, new) if change.breaking]


def gate(
    committed: Mapping[SchemaKey, Schema],
    code: Mapping[SchemaKey, Schema],
    upcasters: Collection[SchemaKey],
) -> list[str]:
    """Problems with the code's event schemas against the committed ones; none means the
    change may ship. `upcasters` names (type, N) for each upcaster from N to N + 1 the
    domain declares."""
    problems = []
    for key in sorted(committed):
        event_type, version = key
        if key not in code:
            problems.append(
                f"{event_type} v{version}: committed, but the code no longer has it; "
                "a committed version is permanent (stored events and consumers use it)"
            )
            continue
        broken = breaking_changes(committed[key], code[key])
        if broken:
            problems.append(
                f"{event_type} v{version}: breaking change to the committed schema: "
                + "; ".join(map(str, broken))
                + f". Keep v{version} as committed and declare v{version + 1} "
                f"with an upcaster from v{version}"
            )
    versions: dict[str, list[int]] = {}
    for event_type, version in code:
        versions.setdefault(event_type, []).append(version)
    for event_type, found in sorted(versions.items()):
        newest = max(found)
        if sorted(found) != list(range(1, newest + 1)):
            problems.append(f"{event_type}: versions {sorted(found)} are not 1..{newest}")
        for version in range(1, newest):
            if (event_type, version) not in upcasters:
                problems.append(
                    f"{event_type}: v{version + 1} exists but no upcaster from v{version}"
                )
    return problems


@dataclass(frozen=True)
class _Roots:
    """The two documents, for resolving `$ref`s into their `$defs`."""

    old: Schema
    new: Schema


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        ref: str = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value may take (anyOf/oneOf flattened, references resolved)."""
    schema = _resolve(schema, root)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return [v for option in schema[combinator] for v in _variants(option, root)]
    types = schema.get("type")
    if isinstance(types, list):  # {"type": ["string", "null"]}
        return [{**schema, "type": t} for t in types]
    return [schema]


def _kind(schema: Schema) -> str:
    if "type" in schema:
        return str(schema["type"])
    if "properties" in schema:
        return "object"
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        return "string" if all(isinstance(v, str) for v in values) else "any"
    return "any"


def _by_kind(variants: list[Schema]) -> dict[str, Schema]:
    return {_kind(v): v for v in variants}


def _values(schema: Schema) -> frozenset[Any] | None:
    if "const" in schema:
        return frozenset([schema["const"]])
    if "enum" in schema:
        return frozenset(schema["enum"])
    return None


def _compare(old: Schema, new: Schema, path: str, roots: _Roots, out: list[Change]) -> None:
    olds, news = _by_kind(_variants(old, roots.old)), _by_kind(_variants(new, roots.new))
    here = path or "(payload)"
    if set(olds) != set(news):
        detail = f"{'|'.join(sorted(olds))} -> {'|'.join(sorted(news))}"
        out.append(Change(here, ChangeKind.RETYPED, detail))
        return
    for kind, before in olds.items():
        after = news[kind]
        if before.get("format") != after.get("format"):
            detail = f"format {before.get('format')} -> {after.get('format')}"
            out.append(Change(here, ChangeKind.RETYPED, detail))
        if _values(before) != _values(after):
            out.append(Change(here, ChangeKind.RETYPED, "allowed values changed"))
        if kind == "object":
            _compare_objects(before, after, path, roots, out)
        elif kind == "array":
            _compare(before.get("items", {}), after.get("items", {}), f"{path}[]", roots, out)


def _compare_objects(old: Schema, new: Schema, path: str, roots: _Roots, out: list[Change]) -> None:
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    prefix = f"{path}." if path else ""
    for name, before in old_props.items():
        where = prefix + name
        if name not in new_props:
            out.append(Change(where, ChangeKind.REMOVED))
            continue
        _compare(before, new_props[name], where, roots, out)
        if name in old_required and name not in new_required:
            out.append(Change(where, ChangeKind.NOW_OPTIONAL))
        elif name in new_required and name not in old_required:
            out.append(Change(where, ChangeKind.NOW_REQUIRED))
    for name in [n for n in new_props if n not in old_props]:
        kind = ChangeKind.NEWLY_REQUIRED if name in new_required else ChangeKind.ADDED
        out.append(Change(prefix + name, kind))
