"""Parsed Question documents, kept between requests.

The frame page, the HIT page and submit each need the HIT's parsed Question (`questions.parse`), on
every request. A HIT's Question never changes after CreateHIT, so the parse is kept, keyed by the
document's text itself (not by HIT id): a HIT whose stored Question were ever rewritten simply misses
the cache and is parsed afresh, so no page can be shown a stale question. Whether the HIT still exists
or is disposed is read from the database on every request, as before; only the parse is kept.

Bounded: at most MAX_ENTRIES documents (each at most questions.MAX_QUESTION_BYTES), least recently
used first out. A document that does not parse raises as `questions.parse` does and is not kept.
"""

from __future__ import annotations

import functools

from eval_server import questions

MAX_ENTRIES = 512


@functools.lru_cache(maxsize=MAX_ENTRIES)
def parse(doc: str) -> questions.Question:
    """`questions.parse(doc)` (the lenient form pages use), computed once per distinct document.
    The Question is a frozen dataclass of tuples, so sharing one between requests is safe."""
    return questions.parse(doc)


def info():
    """Hits, misses and size of the cache (functools' CacheInfo)."""
    return parse.cache_info()


def clear() -> None:
    parse.cache_clear()
