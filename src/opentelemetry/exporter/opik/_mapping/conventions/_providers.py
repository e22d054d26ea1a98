"""Provider names as Opik prices them.

Opik estimates a span's cost from ``model`` + ``provider`` + ``usage`` and only
knows its own provider names (``openai``, ``anthropic``, ``google_vertexai``,
``google_ai``, ``bedrock``, ``azure``, ``mistral``, ``xai``...: the values of
its ``CostService.PROVIDERS_MAPPING``). Instrumentations spell providers their
own way (GenAI semconv ``gcp.vertex_ai``, OpenInference ``mistralai``, Vercel
``openai.chat``, legacy ``az.ai.openai``...), and some put a framework name
where the provider belongs (ADK's ``gcp.vertex.agent``, Traceloop's
``langchain``): those are not providers and are skipped.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

# lower-cased spelling -> Opik name
ALIASES: Dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure_openai": "azure",
    "azure-openai": "azure",
    "microsoft": "azure",
    "anthropic": "anthropic",
    "gcp.vertex_ai": "google_vertexai",
    "vertex_ai": "google_vertexai",
    "vertexai": "google_vertexai",
    "vertex-ai": "google_vertexai",
    "vertex": "google_vertexai",
    "google_vertexai": "google_vertexai",
    "google.vertex": "google_vertexai",
    "gcp.gemini": "google_ai",
    "gemini": "google_ai",
    "google_ai": "google_ai",
    "google_genai": "google_ai",
    "google.generative-ai": "google_ai",
    "aws.bedrock": "bedrock",
    "bedrock": "bedrock",
    "amazon-bedrock": "bedrock",
    "amazon_bedrock": "bedrock",
    "aws": "bedrock",
    "amazon": "bedrock",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "xai",
    "xai": "xai",
    "x-ai": "xai",
    "groq": "groq",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "fireworks": "fireworks_ai",
    "fireworks_ai": "fireworks_ai",
    "fireworksai": "fireworks_ai",
    "together": "together_ai",
    "together_ai": "together_ai",
    "togetherai": "together_ai",
    "moonshot": "moonshot",
    "moonshotai": "moonshot",
    "moonshot_ai": "moonshot",
    "anthropic_vertexai": "anthropic_vertexai",
    "ai21": "ai21",
    "meta": "meta",
    "ibm.watsonx.ai": "watsonx",
    "watsonx": "watsonx",
    "ollama": "ollama",
    "openrouter": "openrouter",
    "sambanova": "sambanova",
    "cerebras": "cerebras",
    "huggingface": "huggingface",
    "jina_ai": "jina_ai",
    "zai": "zai",
    "z-ai": "zai",
}

KNOWN = frozenset(ALIASES.values())

# resolved through server.address: Google's two APIs share these names
_GOOGLE = frozenset(("google", "gcp.gen_ai", "google.genai", "google-genai", "genai"))

# Azure AI Inference fronts Azure OpenAI and Foundry models (Claude, Llama...) that Opik does not
# price as ``azure``: kept as it is (as Opik's GenAiProviderAliasResolver does) unless the host is Azure OpenAI
_AZURE_INFERENCE = frozenset(("azure.ai.inference", "az.ai.inference"))

# API hosts -> provider (OpenAI-compatible clients pointed at a provider report its host)
_HOSTS = (
    (".openai.azure.com", "azure"),
    ("api.openai.com", "openai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "google_ai"),
    ("aiplatform.googleapis.com", "google_vertexai"),
    ("bedrock-runtime.", "bedrock"),
    ("api.mistral.ai", "mistral"),
    ("api.x.ai", "xai"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("api.fireworks.ai", "fireworks_ai"),
    ("api.together.xyz", "together_ai"),
    ("api.together.ai", "together_ai"),
    ("api.moonshot.ai", "moonshot"),
    ("api.moonshot.cn", "moonshot"),
    ("api.cerebras.ai", "cerebras"),
    ("openrouter.ai", "openrouter"),
    ("api.sambanova.ai", "sambanova"),
)

# framework names that instrumentations put in gen_ai.system
NOT_PROVIDERS = frozenset(
    ("gcp.vertex.agent", "langchain", "crewai", "llamaindex", "llama_index", "haystack", "strands-agents", "unknown", "")
)


def _google(server_address: Any) -> str:
    host = str(server_address or "").lower()
    return "google_vertexai" if "aiplatform.googleapis.com" in host or "vertex" in host else "google_ai"


def normalize(value: Any, server_address: Any = None) -> Optional[str]:
    """Opik's name for ``value``, or None when it names no provider.

    Unknown names pass through lower-cased; Vercel-style ``<provider>.<api>``
    (``openai.chat``, ``anthropic.messages``, ``google.vertex.chat``) resolve
    through their leading part(s).
    """
    if value is None:
        return None
    s = str(value).strip().lower()
    if s in NOT_PROVIDERS:
        return None
    if s in _AZURE_INFERENCE:
        return "azure" if from_server(server_address) == "azure" else "azure.ai.inference"
    hit = ALIASES.get(s)
    if hit is not None:
        return hit
    if s in _GOOGLE:
        return _google(server_address)
    host = from_server(s)
    if host is not None:
        return host
    if "." in s:
        parts = s.split(".")
        two = parts[0] + "." + parts[1]
        hit = ALIASES.get(two)
        if hit is not None:
            return hit
        first = parts[0]
        if first in _GOOGLE:
            return _google(server_address)
        hit = ALIASES.get(first)
        if hit is not None:
            return hit
    return s


def from_model_name(model: Any) -> Optional[str]:
    """Provider implied by a model id, only where it is unambiguous.

    LiteLLM-style ``openai/gpt-4o`` names their provider; a Vertex resource
    path (``projects/.../publishers/google/models/gemini-...``) is Vertex; a bare
    ``gemini-*`` id defaults to the Gemini API (``google_ai``), the default of
    ADK and google-genai.
    """
    if not model:
        return None
    s = str(model).strip().lower()
    if s.startswith("projects/") and "/publishers/" in s:
        return "google_vertexai"
    if "/" in s:
        head = s.split("/", 1)[0]
        if head in ("models", "publishers"):
            s = s.rsplit("/", 1)[1]
        else:
            hit = normalize(head)
            return hit if hit in KNOWN else None
    if s.startswith(("gemini", "gemma")):
        return "google_ai"
    return None


def from_server(server_address: Any) -> Optional[str]:
    """The provider whose API host ``server_address`` is (``api.deepseek.com`` -> ``deepseek``); None otherwise."""
    if not server_address:
        return None
    host = str(server_address).strip().lower().rstrip(".")
    if host.startswith(("http://", "https://")):
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].split(":", 1)[0]
    for needle, name in _HOSTS:
        if host == needle or host.endswith(needle if needle[0] == "." else "." + needle) or (
            needle.endswith(".") and host.startswith(needle)
        ):
            return name
    return None


def refine(provider: Optional[str], model: Any) -> Optional[str]:
    """The price table a model is billed from under ``provider``: Claude on Vertex is ``anthropic_vertexai``."""
    if provider == "google_vertexai" and model and "claude" in str(model).lower():
        return "anthropic_vertexai"
    return provider


def resolve(model: Any, server_address: Any) -> Optional[str]:
    """A provider when no attribute names one (or one names a framework): from the model id, then the host."""
    return from_model_name(model) or from_server(server_address)
