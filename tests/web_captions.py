"""A corpus of web-style captions: what CC3M / LAION alt-texts look like, not COCO.

Built deterministically from plain captions and the artefacts web text carries
(curly quotes and apostrophes, HTML entities, double-escaped entities,
full-width forms, ligatures, mojibake, control and zero-width characters,
emoji, accents and non-Latin scripts, runs of whitespace, captions far longer
than 77 tokens). Used by the tokenisation tests against open_clip's tokenizer.
"""

from __future__ import annotations

BASE = [
    "a dog running on the beach",
    "the cat can't find its toy",
    "a bowl of fish and chips",
    "two people sitting on a bench in the park",
    "a red double-decker bus on a london street",
    "coffee & croissant at a small cafe",
    "the best hotel in new york city",
    "an old man reading the newspaper",
    "a vintage car parked by the road",
    "sunset over the mountains, with clouds",
]

ARTEFACTS = [
    lambda t: t.replace("'", "\u2019").replace("a ", "\u201ca\u201d ", 1),
    lambda t: t.replace("&", "&amp;") + " &quot;photo&quot; &#39;hd&#39;",
    lambda t: t.replace("&", "&amp;amp;") + " &lt;b&gt;new&lt;/b&gt; &nbsp;",
    lambda t: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t),
    lambda t: (
        t.replace("fi", "\ufb01").replace("fl", "\ufb02") + " \ufb01ne \ufb02ower"
    ),
    lambda t: t.replace("e", "\u00c3\u00a9", 2) + " caf\u00c3\u00a9",
    lambda t: t + "\x00\x07 \u200b" + t[:5] + "\u200d\ufeff",
    lambda t: "\U0001f600 " + t + " \U0001f408\u200d\u2b1b \u2764\ufe0f",
    lambda t: (
        t
        + " \u00e0 la fran\u00e7aise, na\u00efve, stra\u00dfe, \u6771\u4eac, \u043c\u043e\u0441\u043a\u0432\u0430"
    ),
    lambda t: "  " + t.replace(" ", "\t\n  ", 3) + "\u00a0\u00a0 ",
    lambda t: t.upper() + " \u2013 \u2014 \u2026 \u00ab\u00bb",
    lambda t: (t + ", ") * 12 + "the end",  # far beyond 77 tokens
    lambda t: t.replace(" ", "_") + " #travel @someone http://example.com/a?b=1",
    lambda t: t + " \u00bd \u00b2 \u2122 \u00ae \u00a9 \u2460",
]


def web_captions() -> list[str]:
    """The base captions, each as is and under every artefact (150 captions)."""
    out = list(BASE)
    for artefact in ARTEFACTS:
        out += [artefact(t) for t in BASE]
    return out
