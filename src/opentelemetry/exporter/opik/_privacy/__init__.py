"""Privacy and control: what of a span leaves the process, and whether it does.

``stages_for(settings, stats)`` builds the pipeline stages the settings ask
for, in this order:

1. scope allow/deny lists (``OTEL_EXPORTER_OPIK_SCOPES_ALLOW`` / ``_DENY``),
2. the ``genai`` trace filter (``OTEL_EXPORTER_OPIK_SPAN_FILTER=genai``),
3. content capture off (``OTEL_EXPORTER_OPIK_CAPTURE_CONTENT=false``),
3b. attachments: large base64 content uploaded, replaced by its ``[file name]`` (``_attachments.py``),
4. credential scrubbing (on by default), blob placeholders and the per-field
   size cap, in one walk.

``shrink_item`` is the writer's last resort for one item Opik refuses as too
large (413): its largest content is cut, visibly, to fit.
"""

from __future__ import annotations

from typing import Any, List, Optional

from .._config import OpikSettings
from .._stats import Stats
from ._content import CaptureOff, ContentStage, blob_placeholder, strip_content
from ._filter import GenAIFilter, ScopeFilter, is_genai
from ._scrub import Scrubber, marker
from ._truncate import NOTE_KEY, fit, shrink_item

__all__ = [
    "NOTE_KEY",
    "CaptureOff",
    "ContentStage",
    "GenAIFilter",
    "ScopeFilter",
    "Scrubber",
    "blob_placeholder",
    "fit",
    "is_genai",
    "marker",
    "shrink_item",
    "stages_for",
    "strip_content",
]


def stages_for(settings: OpikSettings, stats: Optional[Stats] = None) -> List[Any]:
    """The stages for ``settings``, cheapest filters first so dropped spans cost the least."""
    stages: List[Any] = []
    if settings.scopes_allow or settings.scopes_deny:
        stages.append(ScopeFilter(settings.scopes_allow, settings.scopes_deny, stats))
    if settings.span_filter == "genai":
        stages.append(GenAIFilter(stats))
    if not settings.capture_content:
        stages.append(CaptureOff())
    from .. import _attachments

    if stats is not None and _attachments.enabled(settings):
        # large base64 content leaves as attachments before scrubbing and size caps see the item
        stages.append(_attachments.AttachmentStage(settings, _attachments.uploader_for(settings, stats)))
    stages.append(ContentStage(settings, stats))
    return stages
