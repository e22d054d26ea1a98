"""An HTTP service whose request spans and LLM spans form one Opik trace.

FastAPI (instrumented by ``opentelemetry-instrumentation-fastapi``) serves
``POST /ask``; the handler calls an OpenAI model (instrumented by
``opentelemetry-instrumentation-openai-v2``). The server span is the root, so
each request is one Opik trace: ``POST /ask`` with the ``chat`` LLM span under
it, the session header as the Opik thread.

Tracing is set up when this module is imported. Under gunicorn with
``preload_app`` (see ``gunicorn.conf.py``) that happens once, in the master,
before the workers fork: the exporter's queue and sender thread restart empty
in each worker, so nothing is sent twice; and nothing is lost when a worker
stops: the app's lifespan shutdown flushes the exporter. (Not ``atexit`` nor
gunicorn's ``worker_exit``: a uvicorn worker ends by re-raising SIGTERM once
the server has stopped, so neither runs.)

    pip install -e . fastapi gunicorn uvicorn opentelemetry-instrumentation-fastapi \\
        opentelemetry-instrumentation-openai-v2 'opentelemetry-util-genai<1.2' openai   # from a clone
    # (from an index: opentelemetry-exporter-opik in place of -e .)
    export OPENAI_API_KEY=sk-... OPIK_URL_OVERRIDE=http://localhost:5173/api
    gunicorn -c examples/fastapi_service/gunicorn.conf.py
    curl -s localhost:8000/ask -H 'content-type: application/json' -H 'x-session-id: s1' \\
        -d '{"question": "What is Opik?"}'
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")

from typing import AsyncIterator, Dict, Optional, Union  # noqa: E402

from fastapi import FastAPI, Header  # noqa: E402
from openai import OpenAI  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter  # noqa: E402

exporter = OpikSpanExporter(project_name=os.environ.get("OPIK_PROJECT_NAME", "otel-fastapi-example"))
provider = TracerProvider(resource=Resource.create({"service.name": "ask-service"}), sampler=OpikSampler())
provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
OpenAIInstrumentor().instrument(tracer_provider=provider)

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
client = OpenAI(max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "2")))


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    provider.shutdown()  # flush this worker's spans before the process ends


app = FastAPI(title="ask-service", lifespan=lifespan)


class Question(BaseModel):
    question: str


@app.post("/ask")
def ask(body: Question, x_session_id: Optional[str] = Header(default=None)) -> Dict[str, Union[str, int]]:
    span = trace.get_current_span()  # the server span FastAPI's instrumentation opened: the trace root
    span.set_attribute("input.value", body.question)
    span.set_attribute("worker.pid", os.getpid())
    if x_session_id:
        span.set_attribute("gen_ai.conversation.id", x_session_id)  # the Opik thread
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": body.question}],
    )
    answer = completion.choices[0].message.content or ""
    span.set_attribute("output.value", answer)
    return {"answer": answer, "pid": os.getpid()}


@app.get("/healthz")
def healthz() -> Dict[str, int]:
    return {"pid": os.getpid()}


# Health checks are not traced; ASGI send/receive events are left out of the span tree.
FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz", exclude_spans=["receive", "send"])
