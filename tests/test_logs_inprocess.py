"""GenAI content that travels in OTel log records reaches Opik: ``OpikLogExporter`` + the join (in process).

Each scenario runs ``tests/logs_app.py`` in a subprocess (the instrumentations patch ``openai`` globally):
the real openai-v2 / Traceloop instrumentation, the real SDK span and log pipelines (``BatchSpanProcessor`` +
``OpikSpanExporter``, ``BatchLogRecordProcessor`` + ``OpikLogExporter``), the fake OpenAI server, real HTTP
to the Opik stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import opik_ui
import pytest
from opik_standin import OpikStandin

HERE = Path(__file__).resolve().parent
APP = HERE / "logs_app.py"


def run_app(scenario: str, mode: str, target: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    full.update({"PYTHONPATH": str(HERE), "OPIK_CONFIG_PATH": "/dev/null"})
    full.update(env or {})
    p = subprocess.run(
        [sys.executable, str(APP), scenario, mode, target, "logs-test"],
        capture_output=True, text=True, env=full, timeout=180,
    )
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def llm_spans(opik: OpikStandin) -> List[Dict[str, Any]]:
    return sorted((s for s in opik.spans.values() if s.get("type") == "llm"), key=lambda s: s["start_time"])


def check_calls(opik: OpikStandin, calls: List[Dict[str, Any]]) -> Tuple[int, int]:
    """Every LLM span reads as a conversation with its own question and answer; returns (passing, total)."""
    spans = llm_spans(opik)
    assert len(spans) == len(calls), [s["name"] for s in spans]
    ok = 0
    for span, call in zip(spans, calls):
        if call["kind"] == "error":
            assert opik_ui.input_detected(span.get("input")), span.get("input")
            assert opik_ui.table_text(span["input"], "input") == call["question"]
            assert span.get("error_info"), span
            ok += 1
            continue
        assert opik_ui.problems(span, call["question"], call["answer"]) == [], (call, span.get("input"), span.get("output"))
        if call["kind"] == "tool_call":
            tool_calls = span["output"]["choices"][0]["message"]["tool_calls"]
            assert tool_calls[0]["function"]["name"] == call["tool"]
        if call["kind"] == "tool_answer":
            roles = [m["role"] for m in span["input"]["messages"]]
            assert roles == ["user", "assistant", "tool"], roles
        ok += 1
    return ok, len(spans)


def no_duplicated_messages(opik: OpikStandin, calls: List[Dict[str, Any]]) -> None:
    expected = {"chat": 2, "stream": 1, "tool_call": 1, "tool_answer": 3, "error": 1}
    for span, call in zip(llm_spans(opik), calls):
        assert len(span["input"]["messages"]) == expected[call["kind"]], span["input"]
        if span.get("output"):
            assert len(span["output"]["choices"]) == 1, span["output"]
        text = json.dumps(span.get("metadata", {}))
        assert call["question"] not in text, "content repeated in metadata"


@pytest.mark.parametrize("mode", ["EVENT_ONLY", "SPAN_AND_EVENT", "legacy"])
def test_openai_v2_content_from_logs(mode: str) -> None:
    with OpikStandin() as opik:
        out = run_app("inproc", mode, opik.url)
        ok, total = check_calls(opik, out["calls"])
        assert (ok, total) == (5, 5)
        no_duplicated_messages(opik, out["calls"])
        assert not opik.duplicates()
        stats = out["log_stats"]
        assert stats["dropped"] == {}, stats
        if mode == "SPAN_AND_EVENT":  # the span has the messages itself: the log copy is not added again
            assert stats["log_records_redundant"] == stats["log_records_received"] == 5, stats
        else:
            assert stats["log_records_joined"] == stats["log_records_received"], stats
            assert stats["log_records_received"] == (5 if mode == "EVENT_ONLY" else 12), stats
        for trace in opik.traces.values():  # each call is its own trace: the rows read as text too
            assert opik_ui.table_text(trace["input"], "input") is not None, trace


def test_traceloop_events_mode() -> None:
    with OpikStandin() as opik:
        out = run_app("inproc", "traceloop", opik.url)
        assert check_calls(opik, out["calls"]) == (5, 5)
        no_duplicated_messages(opik, out["calls"])
        stats = out["log_stats"]
        # Traceloop 0.62.4 emits a streamed call's gen_ai.choice outside the span's context (no span id): it joins
        # the one LLM span that ended right after it
        assert stats["log_records_joined_by_time"] == 1 and stats["dropped"] == {}, stats
        assert not opik.duplicates()


def test_log_records_before_their_spans() -> None:
    with OpikStandin() as opik:
        out = run_app("early", "EVENT_ONLY", opik.url)
        (span,) = llm_spans(opik)
        call = out["calls"][0]
        assert opik_ui.problems(span, call["question"], call["answer"]) == []
        assert out["log_stats"]["log_records_joined"] == 1
        assert out["log_stats"].get("spans_held_for_logs", 0) == 0  # the content was there: nothing waited


def test_log_records_after_their_span_was_sent() -> None:
    with OpikStandin() as opik:
        out = run_app("late", "EVENT_ONLY", opik.url)
        stats = out["log_stats"]
        assert stats["spans_released_without_logs"] == 1 and stats["spans_resent_with_logs"] == 1, stats
        sent = [
            item
            for r in opik.requests
            if r.path.endswith("/spans/batch")
            for item in r.json["spans"]
        ]
        assert len(sent) == 2 and sent[0]["id"] == sent[1]["id"]  # sent without content, then again complete
        assert "input" not in sent[0] and sent[1]["last_updated_at"] > sent[0]["last_updated_at"]
        assert len(opik.spans) == 1 and not opik.duplicates()
        (span,) = opik.spans.values()
        call = out["calls"][0]
        assert opik_ui.problems(span, call["question"], call["answer"]) == []
        (trace,) = opik.traces.values()
        assert opik_ui.table_text(trace["input"], "input") == call["question"]
        assert opik_ui.table_text(trace["output"], "output") == call["answer"]


def test_evaluation_result_record_is_one_feedback_score_on_its_span() -> None:
    with OpikStandin() as opik:
        run_app("evaluation", "EVENT_ONLY", opik.url)
        (span,) = llm_spans(opik)
        scores = list(opik.feedback_scores.values())
        assert len(scores) == 1, scores
        score = scores[0]
        assert score["id"] == span["id"]
        assert (score["name"], score["value"], score["category_name"], score["reason"]) == (
            "correctness", 0.75, "mostly", "close enough"
        )


def test_capture_off_applies_to_content_from_logs() -> None:
    with OpikStandin() as opik:
        out = run_app("early", "EVENT_ONLY", opik.url, env={"OTEL_EXPORTER_OPIK_CAPTURE_CONTENT": "false"})
        (span,) = llm_spans(opik)
        stored = json.dumps([span, *opik.traces.values()])
        assert out["calls"][0]["question"] not in stored and out["calls"][0]["answer"] not in stored
        assert out["log_stats"]["log_records_joined"] == 1


def test_scrubbing_and_size_caps_apply_to_content_from_logs() -> None:
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    question = f"My key is {secret}, is it valid? " + "pad " * 2000
    env = {"LOGS_APP_QUESTION": question, "OTEL_EXPORTER_OPIK_FIELD_MAX_BYTES": "256"}
    with OpikStandin() as opik:
        out = run_app("late", "EVENT_ONLY", opik.url, env=env)  # through the re-send path too
        assert out["log_stats"]["spans_resent_with_logs"] == 1
        stored = json.dumps([*opik.spans.values(), *opik.traces.values()])
        assert secret not in stored and "My key is" in stored
        (span,) = opik.spans.values()
        assert len(json.dumps(span["input"])) < 1024 < len(question)  # the field cap shortened it


@pytest.mark.parametrize("order", ["logs_first_json", "traces_first_protobuf"])
def test_opik_otel_import_joins_log_files_with_their_traces(tmp_path: Path, order: str) -> None:
    from sidecar_helpers import clean_env, opik_otel_command

    out = run_app("files", "EVENT_ONLY", str(tmp_path))
    files = ["logs.jsonl", "traces.jsonl"] if order == "logs_first_json" else ["traces.pb", "logs.pb"]
    with OpikStandin() as opik:
        r = subprocess.run(
            opik_otel_command() + ["import", "--url", opik.url, "--project", "logs-test", *[str(tmp_path / f) for f in files]],
            capture_output=True, text=True, env=clean_env(), timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert check_calls(opik, out["calls"]) == (5, 5)
        no_duplicated_messages(opik, out["calls"])
        assert not opik.duplicates()


def test_a_trace_root_waits_for_its_llm_call_so_the_trace_row_reads_as_the_conversation() -> None:
    with OpikStandin() as opik:
        out = run_app("nested", "EVENT_ONLY", opik.url)
        call = out["calls"][0]
        (span,) = llm_spans(opik)
        assert opik_ui.problems(span, call["question"], call["answer"]) == []
        (trace,) = opik.traces.values()
        assert trace["name"] == "answer-question"
        assert opik_ui.table_text(trace["input"], "input") == call["question"]
        assert opik_ui.table_text(trace["output"], "output") == call["answer"]
        assert len(opik.spans) == 2 and not opik.duplicates()
