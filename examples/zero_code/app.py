"""A plain OpenAI app with no OpenTelemetry code at all.

Run it under ``opentelemetry-instrument`` with ``OTEL_TRACES_EXPORTER=opik`` and
every OpenAI call becomes an Opik trace (see README.md beside this file)::

    OTEL_TRACES_EXPORTER=opik OTEL_SERVICE_NAME=zero-code-demo \\
    OPIK_PROJECT_NAME=otel-zero-code \\
    opentelemetry-instrument python examples/zero_code/app.py
"""

from __future__ import annotations

import os

from openai import OpenAI

client = OpenAI(max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "2")))
model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

for question in ("Name a prime number.", "Name a colour."):
    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Answer in three words."}, {"role": "user", "content": question}],
    )
    print(f"Q: {question}\nA: {answer.choices[0].message.content}")
