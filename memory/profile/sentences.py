"""Plain-text helpers for L1: content words for topic keywords, and sentences for facts."""

from __future__ import annotations

import itertools
import re
import unicodedata

# Words that say nothing about what a group of memories is about: English function words
# and the filler of chat ("haha", "yeah", "tonight"). Longer than retrieval's list on purpose:
# a keyword has to carry a topic on its own.
_STOPWORD_TEXT = """
    a about above after again against ago all almost already also although always am among an
    and another any anyone anything anyway are aren around as at away back be because been
    before being below best better between both but by can cannot could couldn did didn do does
    doesn doing don done down during each either else enough even ever every everyone
    everything few first for from further get gets getting got gonna great had hadn has hasn
    have haven having he her here hers herself him himself his how however i if in into is
    isn it its itself just know last later least less let like little lot lots made make many
    may maybe me might mine more most much must my myself need never new next no nobody none
    nor not nothing now of off oh ok okay old on once one only or other others our ours
    ourselves out over own people per please put quite rather re really right said same say
    says see seem seems she should shouldn since so some someone something soon still such
    sure take than thank thanks that the their theirs them themselves then there these they
    thing things think this those though through till time to today together tomorrow tonight
    too took toward two under until up upon us use used very via want wanted was wasn way we
    well went were weren what whatever when where whether which while who whole whom whose why
    will with within without won would wouldn yeah yes yet you your yours yourself
    yourselves haha hahaha lol omg wow yay hey hi hello bye cool nice good fine lovely brilliant
    amazing awesome thing tbh btw gonna wanna gotta aye wee pls ill ive im youre dont cant
    didnt doesnt isnt thats theres whats lets come coming came bring send sent happy love loved
    feel feeling going look looks looking day days week weeks night morning evening year years
    big small long tell told ask asked give gave call keep try trying start started finally wait
    hope glad sorry miss proud excited fun funny pretty totally absolutely definitely literally
    probably basically left mind idea bit dear xx xxx ahh ooh yep nope cheers pal mate guys tho
    kinda sort kind stuff actually exactly honestly seriously jan feb mar apr jun jul aug sep
    sept oct nov dec mon tue tues wed thu thurs fri sat sun
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_URL = re.compile(r"https?://\S+|www\.\S+")
# What exports put in place of media: "[photo]", "<attached: 0001-PHOTO.jpg>", file names.
_MEDIA = re.compile(
    r"\[(?:photo|media|sticker|attachment|file|voice|video|image|embed|gif)[^\]]*\]"
    r"|<attached:[^>]*>|\S+\.(?:jpe?g|png|gif|webp|heic|mp4|mov|opus|ogg|pdf)\b",
    re.IGNORECASE,
)
# A word is letters, possibly joined by hyphens or apostrophes ("e-bike", "Biscuit's"); digits
# are never part of one, so numbers (door codes, amounts) never become keywords.
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")


def content_words(text: str) -> list[tuple[str, str]]:
    """The topic-bearing words of `text` as (key, surface form) pairs, in order.

    The key is lower-cased and stripped of a possessive 's; words with digits, short words and
    stopwords are left out (numbers make poor and sometimes sensitive keywords: door codes,
    amounts), and so are the placeholders exports put in for media.
    """
    return [(key, surface) for key, surface, _, _ in _scan(_strip_media(text))]


def topic_terms(text: str) -> list[tuple[str, str]]:
    """`content_words`, plus each pair of content words that stand next to each other in the
    text ("half marathon", "São Miguel"): the terms topic keywords are chosen from."""
    clean = _strip_media(text)
    words = _scan(clean)
    terms = [(key, surface) for key, surface, _, _ in words]
    for (k1, s1, _, end), (k2, s2, start, _) in itertools.pairwise(words):
        if clean[end:start].isspace():
            terms.append((f"{k1} {k2}", f"{s1} {s2}"))
    return terms


def _strip_media(text: str) -> str:
    return _MEDIA.sub(" ", _URL.sub(" ", text))


def _scan(clean: str) -> list[tuple[str, str, int, int]]:
    """(key, surface, start, end) of each content word of a text without media or links: not
    a stopword, at least three letters, and no apostrophe left once a possessive 's is gone
    (contractions say nothing about a topic)."""
    out = []
    for match in _WORD.finditer(clean):
        surface = match.group()
        if surface.endswith(("'s", "’s")):
            surface = surface[:-2]
        key = surface.casefold()
        if len(key) < 3 or key in STOPWORDS or "'" in key or "’" in key:
            continue
        out.append((key, surface, match.start(), match.end()))
    return out


_MARKUP = [
    (re.compile(r"\[\[([^\]|]+)\|([^\]]+)\]\]"), r"\2"),  # [[target|label]]
    (re.compile(r"\[\[([^\]]+)\]\]"), r"\1"),  # [[target]]
    (re.compile(r"\[([^\]]+)\]\([^)]+\)"), r"\1"),  # [label](url)
    (re.compile(r"(\*\*|__|`)"), ""),
    (re.compile(r"(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)"), ""),
]
_LINE_START = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s+\|\s+|\s+[–—]\s+")


def plain(text: str) -> str:
    """`text` without Markdown emphasis, links and list or heading markers."""
    lines = []
    for line in text.splitlines():
        line = _LINE_START.sub("", line)
        for pattern, repl in _MARKUP:
            line = pattern.sub(repl, line)
        lines.append(line)
    return "\n".join(lines)


def sentences(text: str) -> list[str]:
    """The sentences of a note chunk or a message.

    A line break continues a sentence in prose, but a list item, a heading or a blank line
    always starts a new one.
    """
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.strip() or _LINE_START.match(line):
            blocks.append([])
        if line.strip():
            blocks[-1].append(line.strip())
    out: list[str] = []
    for block in blocks:
        joined = plain(" ".join(block)) if block else ""
        for piece in _SENTENCE_END.split(joined):
            piece = piece.strip()
            if piece:
                out.append(piece)
    return out


def normalise_value(value: str) -> str:
    """A fact value as a comparison key: case, accents, articles and punctuation removed."""
    folded = unicodedata.normalize("NFKD", value.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = re.findall(r"\w+", folded)
    while words and words[0] in {"the", "a", "an", "my"}:
        words = words[1:]
    return " ".join(words)
