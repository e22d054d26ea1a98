"""Message contents for the benchmark workloads: seeded, stdlib only.

``spans.py`` puts them on OTel spans; ``opik_sdk.py`` hands the same kind of
contents to Opik's own SDK, in a venv without OpenTelemetry.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List

WORDS = (
    "the weather in paris is mild today with light rain expected in the evening "
    "please book a table for two near the river and check the museum opening hours "
    "temperature forecast flight hotel budget itinerary traveller sunny cloudy wind"
).split()


def text(rng: random.Random, n_bytes: int) -> str:
    out: List[str] = []
    size = 0
    while size < n_bytes:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_bytes]


def messages_in(rng: random.Random, n_bytes: int) -> str:
    sys_len = min(120, n_bytes // 3)
    return json.dumps(
        [
            {"role": "system", "parts": [{"type": "text", "content": text(rng, sys_len)}]},
            {"role": "user", "parts": [{"type": "text", "content": text(rng, max(n_bytes - sys_len - 110, 10))}]},
        ]
    )


def messages_out(rng: random.Random, n_bytes: int, tool: bool) -> str:
    parts: List[Dict[str, Any]] = [{"type": "text", "content": text(rng, max(n_bytes - (140 if tool else 60), 10))}]
    if tool:
        parts.append(
            {
                "type": "tool_call",
                "id": f"call_{rng.getrandbits(48):012x}",
                "name": "get_weather",
                "arguments": {"city": "Paris"},
            }
        )
    return json.dumps([{"role": "assistant", "parts": parts, "finish_reason": "tool_call" if tool else "stop"}])
