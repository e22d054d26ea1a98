"""Credential scrubbing: keys that name a secret, and values that look like one.

Keys are judged once and cached (attribute names repeat on every span), so the
common case costs one C-level set check per dict. Values are only searched when
they could hold a credential: a string of 13+ characters with a run of 16+
letters/digits next to a token prefix, a prefix whose token may lack such a run
(GitLab, SendGrid, Slack webhooks), a ``key=value`` pair naming a secret, a URL
with a password or a card-number-shaped run of digits, all found with translates
and substring searches in C before any regular expression runs.

A key *names* a secret (``Authorization``, ``api_key``, ``client_secret``,
``password``, ``cookie``...): its whole value goes. A few words are only weak
hints (``token``, ``auth``): the value goes when it looks opaque (16+ chars, no
spaces, a digit), so ``{"token": "Hello"}`` in logprobs and usage counters such
as ``prompt_tokens`` / ``max_tokens`` / ``llm.token_count.prompt`` survive.
A value *looks like* a secret when it contains a bearer token, an OpenAI /
Anthropic / Stripe / AWS / GitHub / GitLab / Google / Slack / Hugging Face /
SendGrid / npm key, a Slack webhook URL, a JWT, a PEM private key, a password in
a URL, a ``password=`` / ``aws_secret_access_key=`` / ``AccountKey=`` pair, a
payment card number (issuer prefix, length and Luhn checksum all valid), or the
exporter's own Opik API key: only the secret part is replaced. Every replacement
is a marker naming what was removed, e.g. ``[scrubbed: api key]``.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, Optional, Pattern, Sequence, Tuple

#: the shortest string that is searched at all (a 13-digit card number; every token is longer)
MIN_SECRET_LEN = 13
#: a token's body: a run of this many letters/digits (and the shortest opaque value under a weak key)
_RUN_LEN = 16
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
    r"gl(?:pat|dt|rt|ptt|soat|cbt)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*",
    r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
    r"npm_[A-Za-z0-9]{36}",
    r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{16,}",
    r"://[^/\s:@]{0,128}:[^/\s@]{1,256}@",
)
#: prefixes of tokens whose body may have no run of 16 letters/digits (``hooks.slack.com/``, ``SG.``,
#: GitLab's) are always looked for, as substrings (``str.find`` in C, :func:`_has_direct`); every
#: GitLab prefix ends in "t-", so its pattern runs only then
_GITLAB = re.compile(r"gl(?:pat|dt|rt|ptt|soat|cbt)-").search
#: ``password=...`` / ``"api_key": "..."`` / ``aws_secret_access_key = ...`` / ``AccountKey=...;`` inside
#: free text (error messages, logs, connection strings, INI and env files)
_KV = re.compile(
    r"(?i)(?<![a-z])("
    r"pass(?:word|wd|phrase)?|pwd"
    r"|(?:client[_-]?|aws[_-]?)?secret(?:[_-]?access)?(?:[_-]?key)?"
    r"|api[_-]?key|(?:shared[_-]?)?access[_-]?key|account[_-]?key|private[_-]?key"
    r"|(?:access|auth|refresh|id|session)[_-]?token"
    r")([\"']?\s*[:=]\s*[\"']?)([^\s\"',;&)}\]]{3,})"
)
#: words of ``_KV`` keys: found by a cheap first word, then these
_KV_WORDS = ("passw", "passphrase", "pwd", "secret", "_token", "-token")
_KV_KEY_WORDS = (
    "api_key",
    "apikey",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "accountkey",
    "account_key",
    "account-key",
    "privatekey",
    "private_key",
    "private-key",
)
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
    ("github_pat_", "github token"),
    ("xox", "slack token"),
    ("hf_", "huggingface token"),
    ("gl", "gitlab token"),
    ("SG.", "sendgrid key"),
    ("npm_", "npm token"),
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
    "npm_",
    "PRIVATE KEY",
)
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

# bytes 0-9A-Za-z -> "a", everything else -> " ": a secret is a run of 16 "a"
_RUN_TABLE = bytes(97 if (48 <= i <= 57 or 65 <= i <= 90 or 97 <= i <= 122) else 32 for i in range(256))
_RUN = b"a" * _RUN_LEN
# bytes 0-9 -> "0", space and "-" -> "-", everything else -> "x": every card number has a run of
# 13 digits or two groups of 4 split by a space or a dash
_DIGIT_TABLE = bytes(48 if 48 <= i <= 57 else 45 if i in (32, 45) else 120 for i in range(256))
_CARD_RUN = b"0" * 13
_CARD_GROUPS = b"0000-0000"
#: a payment card number: 13-19 digits, or 4-4-4-4(-3) / 4-6-4(5) groups split by one kind of separator;
#: not part of a longer number, word, decimal or base64 run (checked further by ``_is_card``)
_CARD_RX = (
    r"(?<![\w.+/=])(?<!\d-)"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?![\w+/=]|[.,-]\d)"
)
_CARD = re.compile(_CARD_RX)
#: the same on the UTF-8 bytes, tried only where ``_DIGIT_TABLE`` found a card's shape
_CARD_B = re.compile(_CARD_RX.encode(), re.ASCII)
#: the first digit of every issuer ``_is_card`` knows
_CARD_FIRST = frozenset(b"23456")
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
    return len(value) >= _RUN_LEN and not _SPACE.search(value) and _DIGIT.search(value) is not None


def _is_card(digits: str) -> bool:
    """An issuer prefix (Visa, Mastercard, Amex, Discover, UnionPay, JCB, Diners), its lengths, and Luhn."""
    n = len(digits)
    d1, d2, d4 = digits[0], int(digits[:2]), int(digits[:4])
    if d1 == "4":
        ok = n in (13, 16, 19)
    elif 51 <= d2 <= 55 or 2221 <= d4 <= 2720:
        ok = n == 16
    elif d2 in (34, 37):
        ok = n == 15
    elif d1 == "6" or 3528 <= d4 <= 3589:
        ok = n >= 16
    elif 300 <= int(digits[:3]) <= 305 or d2 in (36, 38, 39):
        ok = n >= 14
    else:
        ok = False
    if not ok:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        v = ord(c) - 48
        if i & 1:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def _card_digits(m: "re.Match[str]") -> str:
    return m.group().replace(" ", "").replace("-", "")


def _has_card(s: str, b: Optional[bytes] = None) -> bool:
    """A valid card number in ``s`` (``b``: ``s`` encoded, when the caller has it).

    Only where the digit translate shows a card's shape is the pattern tried, so a
    text full of long numbers (nanosecond timestamps) costs one match per number.
    """
    if b is None:
        b = s.encode("utf-8", "surrogatepass")
    t = b.translate(_DIGIT_TABLE)
    i = t.find(_CARD_RUN)
    while i >= 0:
        # a run of digits; no other run can start in the next 13 bytes (they are this
        # run's digits), so a run that cannot be a card (a timestamp) is stepped over
        if b[i] in _CARD_FIRST and (i == 0 or t[i - 1] != 48) and _card_at(b, i):
            return True
        i = t.find(_CARD_RUN, i + 13)
    i = t.find(_CARD_GROUPS)
    while i >= 0:
        if b[i] in _CARD_FIRST and _card_at(b, i):
            return True
        i = t.find(_CARD_GROUPS, i + 1)
    return False


def _card_at(b: bytes, i: int) -> bool:
    m = _CARD_B.match(b, i)
    return m is not None and _is_card(m.group().decode().replace(" ", "").replace("-", ""))


def _replace_card(m: "re.Match[str]") -> str:
    return marker("card number") if _is_card(_card_digits(m)) else m.group()


def _has_direct(s: str) -> bool:
    return "SG." in s or "hooks.slack.com/" in s or ("t-" in s and _GITLAB(s) is not None)


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
        if _has_kv_word(s) or _has_direct(s) or _has_card(s):
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
        if _has_kv_word(j) or _has_direct(j) or _has_card(j, b):
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
        if _has_card(out):
            out = _CARD.sub(_replace_card, out)
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
        if text.startswith("hooks."):
            return text[: text.index("/", 16) + 1] + marker("slack webhook")
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
    if "pass" in low or "pwd" in low or "secret" in low or "token" in low:
        for w in _KV_WORDS:
            if w in low:
                return True
    if "key" in low:
        for w in _KV_KEY_WORDS:
            if w in low:
                return True
    return False


#: after a bare ``: `` a word of prose ("Your password: must be ...") is not a value
_PROSE_WORD = re.compile(r"[A-Za-z][a-z]*[.!?:]?")


def _replace_kv(m: "re.Match[str]") -> str:
    key, sep, value = m.group(1), m.group(2), m.group(3)
    if value.startswith("[scrubbed"):
        return m.group()
    if sep.strip() == ":" and sep[-1].isspace() and _PROSE_WORD.fullmatch(value):
        return m.group()
    return f"{key}{sep}{marker(_kv_label(key.lower()))}"


def _kv_label(low: str) -> str:
    if low.startswith(("pass", "pwd")):
        return "password"
    if "secret" in low:
        return "secret"
    if low.startswith("api"):
        return "api key"
    for word in ("account", "access", "private"):
        if word in low and low.endswith("key"):
            return f"{word} key"
    return "token"
