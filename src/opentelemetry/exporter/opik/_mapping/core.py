"""Convention-independent reading: Opik's own keys, thread, environment, tags, errors.

Runs after the convention readers, so it only fills what they left empty.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .._ids import is_uuid7
from .._record import STATUS_ERROR
from ._model import SIGN_ENV, SIGN_IO, SIGN_OPIK, SIGN_TAGS, SIGN_THREAD, MappedSpan, is_empty

THREAD_KEYS = ("gen_ai.conversation.id", "session.id", "thread_id")
ENV_KEYS = ("deployment.environment.name", "deployment.environment")
TAG_KEYS = ("tag.tags",)
_OPIK_ID_KEYS = (("opik.trace_id", "trace_id"), ("opik.span_id", "span_id"), ("opik.parent_span_id", "parent_span_id"))
#: Opik's own keys (``out.present`` has ``SIGN_OPIK`` when the span carries one)
OPIK_KEYS = ("opik.project_name", "opik.tags", "opik.metadata", "opik.thread_id", *(k for k, _ in _OPIK_ID_KEYS))
#: the generic input/output keys read here (also stripped when content capture is off)
CONTENT_KEYS = ("input.value", "output.value", "gen_ai.input.messages", "gen_ai.output.messages")
_CLASS_REPR = re.compile(r"^<class '([^']+)'>$")


def clean_exception_type(value: Any) -> Optional[str]:
    """``<class 'openai.InternalServerError'>`` -> ``openai.InternalServerError``."""
    if is_empty(value):
        return None
    s = str(value).strip()
    m = _CLASS_REPR.match(s)
    return m.group(1) if m else s


def error_info(out: MappedSpan) -> Optional[Dict[str, str]]:
    """From the last ``exception`` event, else from an ERROR status; traceback never empty."""
    rec = out.record
    attrs = rec.attributes
    for ev in reversed(rec.events):
        if ev.name == "exception":
            a = ev.attributes
            etype = clean_exception_type(a.get("exception.type")) or clean_exception_type(attrs.get("error.type")) or "Error"
            message = str(a.get("exception.message") or rec.status_message or "")
            tb = str(a.get("exception.stacktrace") or "") or message or etype
            info = {"exception_type": etype, "traceback": tb}
            if message:
                info["message"] = message
            return info
    if rec.status_code == STATUS_ERROR:
        etype = clean_exception_type(attrs.get("error.type")) or "Error"
        message = rec.status_message or ""
        info = {"exception_type": etype, "traceback": message or etype}
        if message:
            info["message"] = message
        return info
    return None


def _read_opik(out: MappedSpan) -> None:
    get = out.record.attributes.get
    used = out.used
    v = get("opik.project_name")
    if v is not None:
        used.add("opik.project_name")
        if not is_empty(v):
            out.project_name = str(v).strip()
    v = get("opik.tags")
    if v is not None:
        used.add("opik.tags")
        out.add_tags(v)
    v = get("opik.metadata")
    if v is not None:
        used.add("opik.metadata")
        out.merge_metadata(v)
    v = get("opik.thread_id")
    if v is not None:
        used.add("opik.thread_id")
        out.set_thread(v)
    for key, field in _OPIK_ID_KEYS:
        v = get(key)
        if v is not None:
            used.add(key)
            if is_uuid7(v):
                out.opik_ids[field] = str(v).lower()


#: (the last resource seen, its environment): every span of a provider shares one resource object
_last_resource: Tuple[object, Optional[str]] = (None, None)


def _resource_environment(res: Mapping[str, Any]) -> Optional[str]:
    """The resource's ``deployment.environment[.name]`` as ``MappedSpan.set_environment`` keeps it."""
    global _last_resource
    last, env = _last_resource
    if last is res:
        return env
    env = None
    for key in ENV_KEYS:
        v = res.get(key)
        if v is not None and not is_empty(v):
            env = str(v)[:150]
            break
    _last_resource = (res, env)
    return env


def _read_io(out: MappedSpan) -> None:
    """Generic input/output keys, when no convention reader claimed them (the OpenInference
    reader claims an input.value/output.value it read as nothing: a failed call's empty result)."""
    get = out.record.attributes.get
    used = out.used
    v = get("input.value")
    if v is not None and "input.value" not in used:
        out.set_input(v, "input.value")
    v = get("gen_ai.input.messages")
    if v is not None:
        out.set_input(v, "gen_ai.input.messages")
    v = get("output.value")
    if v is not None and "output.value" not in used:
        out.set_output(v, "output.value")
    v = get("gen_ai.output.messages")
    if v is not None:
        out.set_output(v, "gen_ai.output.messages")


def _read_keys(out: MappedSpan, keys: Tuple[str, ...], setter: Callable[[Any], None]) -> None:
    get = out.record.attributes.get
    for key in keys:
        v = get(key)
        if v is not None:
            out.used.add(key)
            setter(v)


def read(out: MappedSpan) -> None:
    rec = out.record
    present = out.present  # the family index's sign bits of the keys the span carries (-1: all)
    # Opik's own keys (as its SDK's OpikSpanProcessor and its OTLP endpoint use them)
    if present & SIGN_OPIK:
        _read_opik(out)
    if present & SIGN_THREAD:
        _read_keys(out, THREAD_KEYS, out.set_thread)
    if present & SIGN_ENV:
        _read_keys(out, ENV_KEYS, out.set_environment)
    if out.environment is None:
        out.environment = _resource_environment(rec.resource)
    if present & SIGN_TAGS:
        _read_keys(out, TAG_KEYS, out.add_tags)
    if present & SIGN_IO:
        _read_io(out)
    if out.error_info is None and (rec.events or rec.status_code == STATUS_ERROR):  # else error_info finds none
        out.error_info = error_info(out)
    if out.type is None:
        out.type = "general"
