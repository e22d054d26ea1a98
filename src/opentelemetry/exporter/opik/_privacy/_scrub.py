"""Credential scrubbing: keys that name a secret, and values that look like one.

Keys are judged once and cached (attribute names repeat on every span), so the
common case costs one C-level set check per dict. Values are only searched when
they could hold a credential: a string of 16+ characters with a run of 16+
letters/digits (every token format below has one), found with a translate and
a substring search in C before any regular expression runs.

A key *names* a secret (``Authorization``, ``api_key``, ``client_secret``,
``password``, ``cookie``...): its whole value goes. A few words are only weak
hints (``token``, ``auth``): the value goes when it looks opaque (16+ chars, no
spaces, a digit), so ``{"token": "Hello"}`` in logprobs and usage counters such
as ``prompt_tokens`` / ``max_tokens`` / ``llm.token_count.prompt`` survive.
A value *looks like* a secret when it contains a bearer token, an OpenAI /
Anthropic / AWS / GitHub / Google / Slack / Hugging Face key, a JWT, a PEM
private key, a password in a URL, or the exporter's own Opik API key: only the
secret part is replaced. Every replacement is a marker naming what was removed,
e.g. ``[scrubbed: api key]``.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, Optional, Pattern, Sequence, Tuple

MIN_SECRET_LEN = 16
_CACHE_MAX = 8192
_CACHE_KEY_MAX_LEN = 200

# label, key regex (case-insensitive search)
_STRONG_KEYS: Tuple[Tuple[str, str], ...] = (
    ("authorization", r"authori[sz]ation|proxy[-_. ]?auth"),
    ("password", r"pass(?:word|wd|phrase)|(?<![a-z])pwd(?![a-z])"),
    ("api key", r"api[-_. ]?key"),
    ("private key", r"private[-_. ]?key"),
    ("secret", r"secret"),
    ("access key", r"access[-_. ]?key"),
    ("session key", r"session[-_. ]?(?:key|token|secret)"),
    (
        "token",
        r"(?:access|refresh|auth|bearer|api|security|csrf|xsrf|oauth|sso|personal[-_. ]?access|(?<![a-z])id)"
        r"[-_. ]?token|(?<![a-z])jwt(?![a-z])",
    ),
    ("cookie", r"cookie"),
    ("credential", r"credential"),
    ("key", r"(?:signing|encryption|master|subscription|license|client)[-_. ]?key"),
)
_WEAK_KEY = re.compile(r"(?<![a-z])(token|auth)(?![a-z])", re.I)
#: a weak word next to one of these is a counter or a setting, not a credential
_WEAK_EXCEPT = re.compile(
    r"count|usage|max|min|limit|budget|first|last|logprob|type|len|num|total|prompt|completion|"
    r"input|output|reason|cache|audio|text|index|rate|stream|byte|time|(?<![a-z])ids?(?![a-z])",
    re.I,
)

# Value patterns. Every branch starts with a literal (no groups, no lookbehind), so the
# regex engine rejects most positions with one character compare; the label and the
# left word boundary are settled in ``_replace`` from the matched text.
_VALUE_PATTERNS: Tuple[str, ...] = (
    r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    r"[Bb]earer [A-Za-z0-9\-._~+/]{16,}=*",
    r"sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
    r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Z0-9])",
    r"AIza[0-9A-Za-z_-]{35}",
    r"gh[pousr]_[A-Za-z0-9]{36,}",
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"hf_[A-Za-z0-9]{30,}",
    r"://[^/\s:@]{0,128}:[^/\s@]{1,256}@",
)
#: ``password=...`` / ``"api_key": "..."`` inside free text (error messages, logs, connection strings)
_KV = re.compile(
    r"(?i)(?<![a-z])(pass(?:word|wd)?|pwd|(?:client[_-]?)?secret|api[_-]?key|(?:access|auth|refresh|id)[_-]?token)"
    r"([\"']?\s*[:=]\s*[\"']?)([^\s\"',;&)}\]]{3,})"
)
_KV_WORDS = ("passw", "pwd", "secret", "api_key", "apikey", "api-key", "_token", "-token")
_KV_LABELS = {"pass": "password", "pwd": "password", "secr": "secret", "clie": "secret", "api": "api key"}
#: matched-text prefix -> label (first match wins)
_PREFIX_LABELS: Tuple[Tuple[str, str], ...] = (
    ("-----", "private key"),
    ("eyJ", "jwt"),
    ("sk-ant-", "anthropic key"),
    ("sk-", "api key"),
    ("sk_", "api key"),
    ("rk_", "api key"),
    ("AIza", "google api key"),
    ("A", "aws key"),
    ("gh", "github token"),
    ("xox", "slack token"),
    ("hf_", "huggingface token"),
)
#: one of these is in every string a value pattern can match (checked only after the run test)
_ANCHORS = (
    "k-",
    "k_",
    "eyJ",
    "earer",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AIza",
    # the GitHub token prefixes themselves: a bare "gh" is in every other English
    # sentence ("right", "through"), which sent most LLM text down the slow path
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "_pat_",
    "xox",
    "hf_",
    "PRIVATE KEY",
)
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

# bytes 0-9A-Za-z -> "a", everything else -> " ": a secret is a run of 16 "a"
_RUN_TABLE = bytes(97 if (48 <= i <= 57 or 65 <= i <= 90 or 97 <= i <= 122) else 32 for i in range(256))
_RUN = b"a" * MIN_SECRET_LEN
_SPACE = re.compile(r"\s")
_DIGIT = re.compile(r"\d")


def marker(label: str) -> str:
    return f"[scrubbed: {label}]"


class KeyClass:
    """How a key is treated: ``strong`` scrubs its whole value, weak only opaque strings."""

    __slots__ = ("label", "strong", "allow")

    def __init__(self, label: str, strong: bool, allow: bool = False) -> None:
        self.label = label
        self.strong = strong
        self.allow = allow


ALLOW = KeyClass("", False, allow=True)


def looks_opaque(value: str) -> bool:
    """A token-like string: long, no whitespace, at least one digit."""
    return len(value) >= MIN_SECRET_LEN and not _SPACE.search(value) and _DIGIT.search(value) is not None


class Scrubber:
    """Judges keys (cached) and scrubs string values; thread-safe, shared by all spans."""

    def __init__(
        self,
        extra_key_patterns: Sequence[str] = (),
        allow_keys: Sequence[str] = (),
        own_secrets: Sequence[str] = (),
    ) -> None:
        self._strong = re.compile("|".join(f"(?P<k{i}>{rx})" for i, (_, rx) in enumerate(_STRONG_KEYS)), re.I)
        self._strong_labels = {f"k{i}": label for i, (label, _) in enumerate(_STRONG_KEYS)}
        self._extra: Optional[Pattern[str]] = (
            re.compile("|".join(f"(?:{p})" for p in extra_key_patterns), re.I) if extra_key_patterns else None
        )
        self._allow = frozenset(k.strip().lower() for k in allow_keys if k.strip())
        own = tuple(sorted((x for x in own_secrets if x and len(x) >= 8), key=len, reverse=True))
        self._own = frozenset(own)
        # a secret without a 16-character run would slip past the run test: look for it directly
        self._own_plain = tuple(x for x in own if _RUN not in x.encode("utf-8", "surrogatepass").translate(_RUN_TABLE))
        self._anchors = _ANCHORS + tuple(x for x in own if x not in self._own_plain)
        self._values = re.compile("|".join(tuple(re.escape(x) for x in own) + _VALUE_PATTERNS))
        self._anchor_b = re.compile(
            b"|".join(re.escape(a.encode()) for a in self._anchors if a not in own) or b"(?!)"
        ).search
        #: keys known to be harmless: ``clean.issuperset(d)`` clears a whole dict in C
        self.clean: set = set()
        self._cache: Dict[str, KeyClass] = {}
        self._lock = threading.Lock()

    # -- keys --------------------------------------------------------------------
    def classify(self, key: Any) -> Optional[KeyClass]:
        """None for an ordinary key, else how to treat its value."""
        k = key if type(key) is str else str(key)
        hit = self._cache.get(k)
        if hit is not None:
            return hit
        if k in self.clean:
            return None
        cls = self._judge(k)
        if len(k) <= _CACHE_KEY_MAX_LEN:
            with self._lock:
                if len(self._cache) + len(self.clean) >= _CACHE_MAX:
                    self._cache.clear()
                    self.clean.clear()
                if cls is None:
                    self.clean.add(k)
                else:
                    self._cache[k] = cls
        return cls

    def _judge(self, key: str) -> Optional[KeyClass]:
        if key.lower() in self._allow:
            return ALLOW
        m = self._strong.search(key)
        if m is not None:
            return KeyClass(self._strong_labels[m.lastgroup or ""], True)
        if self._extra is not None and self._extra.search(key):
            return KeyClass("custom pattern", True)
        m = _WEAK_KEY.search(key)
        if m is not None and not _WEAK_EXCEPT.search(key):
            return KeyClass(m.group(1).lower(), False)
        return None

    # -- values ------------------------------------------------------------------
    def might_hold_secret(self, s: str) -> bool:
        """The fast pre-check: False means no value pattern can match ``s``.

        A run of 16 letters/digits (translate + substring search, in C; a PEM
        body, every key and token format has one), then one of the patterns'
        anchors; a URL with credentials and an own secret without such a run
        are looked for directly.
        """
        if _RUN in s.encode("utf-8", "surrogatepass").translate(_RUN_TABLE):
            for a in self._anchors:
                if a in s:
                    return True
        if "@" in s and "://" in s:
            return True
        if _has_kv_word(s):
            return True
        for own in self._own_plain:
            if own in s:
                return True
        return False

    def any_might_hold_secret(self, strs: Sequence[str]) -> bool:
        """:meth:`might_hold_secret` for many strings at once (one join, a few C passes).

        Each run of 16 letters/digits is judged by the 40 bytes before it (every
        format's prefix sits there: ``sk-proj-``, ``Bearer ``, ``xoxb-...-``),
        so ids such as ``chatcmpl-...`` cost one short regex look.
        """
        j = "\x00".join(strs)
        b = j.encode("utf-8", "surrogatepass")
        t = b.translate(_RUN_TABLE)
        i = t.find(_RUN)
        anchor = self._anchor_b
        while i >= 0:
            if anchor(b, max(0, i - 40), i + 8) is not None:
                return True
            k = t.find(b" ", i)
            if k < 0:
                break
            i = t.find(_RUN, k)
        if "@" in j and "://" in j:
            return True
        if _has_kv_word(j):
            return True
        for own in self._own:
            if own in j:
                return True
        return False

    def scrub_str(self, s: str) -> str:
        """``s`` with every secret-looking part replaced by a marker (``s`` itself if none)."""
        if len(s) < MIN_SECRET_LEN or not self.might_hold_secret(s):
            return s
        out = self._values.sub(self._replace, s)
        if _has_kv_word(out):
            out = _KV.sub(_replace_kv, out)
        return s if out == s else out

    def _replace(self, m: "re.Match[str]") -> str:
        text = m.group()
        if text in self._own:
            return marker("opik api key")
        if text.startswith("://"):
            user = text[3:].split(":", 1)[0]
            return f"://{user}:{marker('password')}@"
        if text[:6] in ("Bearer", "bearer"):
            return text[:7] + marker("bearer token")
        if text.startswith("-----"):
            return marker("private key")
        start = m.start()
        if start and m.string[start - 1] in _WORD:
            return text  # inside a longer word (``task-...``): not a key prefix
        for prefix, label in _PREFIX_LABELS:
            if text.startswith(prefix):
                return marker(label)
        return marker("secret")


def _has_kv_word(s: str) -> bool:
    if "=" not in s and ":" not in s:  # memchr: most text has neither, and every pair needs one
        return False
    low = s.lower()
    for w in _KV_WORDS:
        if w in low:
            return True
    return False


def _replace_kv(m: "re.Match[str]") -> str:
    key, sep, value = m.group(1), m.group(2), m.group(3)
    if value.startswith("[scrubbed"):
        return m.group()
    low = key.lower()
    label = _KV_LABELS.get(low[:4]) or _KV_LABELS.get(low[:3]) or "token"
    return f"{key}{sep}{marker(label)}"
