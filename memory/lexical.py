"""Words for lexical matching: the stop words and the FTS5 query every lexical search uses."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

# Words that carry no topic. Kept short on purpose: BM25's idf already discounts common words;
# this only keeps FTS5 from matching nearly every memory on "the".
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        # what is left of contractions ("what's", "don't", "you're") once split into words
        "s",
        "t",
        "ll",
        "re",
        "ve",
        "d",
        "m",
    ]
)


def content_words(text: str) -> list[str]:
    """The words of `text` that carry a topic (casefolded, in order, each once)."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.casefold()) if w not in STOPWORDS))


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression: any of the query's content words, each quoted so that user
    input is never read as FTS5 syntax."""
    return " OR ".join(f'"{w}"' for w in content_words(text))
