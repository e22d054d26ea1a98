"""Derive the JSON Schemas of Opik's trace/span write payloads from its OpenAPI spec.

Usage (from the repository root)::

    python tests/schema/derive_opik_schema.py [SPEC] [OUT]

SPEC defaults to ``../shared/opik/openapi.yaml`` and OUT to
``tests/schema/opik_write_schemas.json``.  The output holds the root schemas
below plus everything they transitively ``$ref`` (and nothing else), so the
tests run without the spec.  A few OpenAPI-isms are normalised so that the
result is a valid JSON Schema 2020-12 document; every change is listed in the
output's ``x-derived-from.fixups``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "opik" / "openapi.yaml"
DEFAULT_OUT = Path(__file__).resolve().parent / "opik_write_schemas.json"
REF_PREFIX = "#/components/schemas/"

ROOTS = [
    "TraceBatch_Write",
    "SpanBatch_Write",
    "Trace_Write",
    "Span_Write",
    "ErrorInfo_Write",
    "FeedbackScoreBatch_Write",
]

# Root names the spec does not define: alias them to the request body schema of
# the endpoint that takes that payload (the spec's own choice).
ALIAS_FROM_ENDPOINT = {
    "FeedbackScoreBatch_Write": [
        ("/v1/private/traces/feedback-scores", "put"),
        ("/v1/private/spans/feedback-scores", "put"),
    ],
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts the ``=`` (``tag:yaml.org,2002:value``) scalar."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _refs(node: Any) -> Set[str]:
    """Names of all component schemas referenced anywhere inside ``node``."""
    found: Set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX):])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _request_schema_ref(spec: Dict[str, Any], path: str, method: str) -> str:
    body = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return body["$ref"][len(REF_PREFIX):]


def _normalise(node: Any, where: str, fixups: List[str]) -> Any:
    """Rewrite OpenAPI 3.0 keywords that JSON Schema 2020-12 reads differently."""
    if isinstance(node, list):
        return [_normalise(v, where, fixups) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _normalise(v, where, fixups) for k, v in node.items()}
    for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(excl), bool):
            if node.pop(excl) and bound in node:
                node[excl] = node.pop(bound)
            fixups.append(f"{where}: boolean {excl} rewritten (OpenAPI 3.0 form)")
    if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        fixups.append(f"{where}: nullable -> type [.., null]")
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(node.get("type"), str) and isinstance(branches, list):
        branch_types = {b.get("type") for b in branches if isinstance(b, dict)}
        if branch_types - {node["type"]}:
            fixups.append(
                f"{where}: dropped 'type: {node.pop('type')}' that contradicts its anyOf/oneOf "
                f"(Opik accepts {sorted(t for t in branch_types if t)})"
            )
    return node


def derive(spec_path: Path) -> Dict[str, Any]:
    raw = spec_path.read_bytes()
    spec = yaml.load(raw, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    all_schemas: Dict[str, Any] = spec["components"]["schemas"]
    fixups: List[str] = []
    selected: Dict[str, Any] = {}

    pending = []
    for name in ROOTS:
        if name in all_schemas:
            pending.append(name)
            continue
        targets = {_request_schema_ref(spec, p, m) for p, m in ALIAS_FROM_ENDPOINT.get(name, [])}
        if len(targets) != 1:
            raise SystemExit(f"{name} is not in the spec and has no unambiguous endpoint alias: {targets}")
        target = targets.pop()
        selected[name] = {"$ref": REF_PREFIX + target}
        fixups.append(f"{name}: not defined by the spec; alias of {target}, the request body of "
                      + ", ".join(f"{m.upper()} {p}" for p, m in ALIAS_FROM_ENDPOINT[name]))
        pending.append(target)

    while pending:
        name = pending.pop()
        if name in selected:
            continue
        schema = copy.deepcopy(all_schemas[name])
        selected[name] = _normalise(schema, name, fixups)
        pending.extend(sorted(_refs(schema) - set(selected)))

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "GENERATED by tests/schema/derive_opik_schema.py; do not edit by hand.",
        "x-derived-from": {
            "spec": os.path.relpath(spec_path.resolve(), REPO_ROOT).replace(os.sep, "/"),
            "spec_title": spec.get("info", {}).get("title"),
            "spec_version": spec.get("info", {}).get("version"),
            "openapi": spec.get("openapi"),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "roots": ROOTS,
            "fixups": sorted(set(fixups)),
        },
        "components": {"schemas": dict(sorted(selected.items()))},
    }


def main(argv: List[str]) -> int:
    spec_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    out_path = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    doc = derive(spec_path)
    out_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    names = ", ".join(doc["components"]["schemas"])
    print(f"wrote {out_path} ({len(doc['components']['schemas'])} schemas: {names})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
