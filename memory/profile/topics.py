"""Topics ("shades"): memories clustered by their stored embeddings, labelled by c-TF-IDF.

Clustering is k-means on the L2-normalised embeddings (so Euclidean distance ranks like cosine
similarity), seeded, on memories in a fixed order: the same memories give the same topics. The
number of clusters grows with the square root of the data (about sqrt(n/2), bounded), and
clusters smaller than `min_size` are dropped: their memories stay unassigned rather than
forming topics of two.

Keywords are class-based TF-IDF (as in BERTopic): a word ranks high in a topic when it is
frequent there and rare across the scope's other topics. A keyword must occur in at least two
of the topic's memories, so one message's odd word never names a topic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.profile.records import TopicCluster, TopicName

# Above this many memories, mini-batch k-means: a few times faster, and as deterministic.
MINI_BATCH_ABOVE = 5000


@dataclass(frozen=True)
class TopicConfig:
    """How topics are found. `assign_quantile`: a new memory joins an existing topic when it is
    at least as similar to the topic's centre as this share of the topic's own members are
    (never below `assign_floor`). `relabel_growth`: a topic is renamed once it has grown by
    this share since it was last named (or when it lost members). `background_sample`: above
    this many memories, renaming a few topics estimates how common words are from this many
    of the scope's memories instead of reading all of them."""

    seed: int = 0
    min_size: int = 3
    min_topics: int = 2
    max_topics: int = 40
    min_words: int = 3
    keywords: int = 6
    assign_quantile: float = 0.1
    assign_floor: float = 0.3
    relabel_growth: float = 0.2
    samples: int = 8
    background_sample: int = 3000


def topic_count(n: int, config: TopicConfig) -> int:
    """How many clusters to look for in `n` memories (0: too few to cluster)."""
    if n < 2 * config.min_size:
        return 0
    k = round(math.sqrt(n / 2))
    return max(config.min_topics, min(config.max_topics, k, n // config.min_size))


def cluster(vectors: np.ndarray, config: TopicConfig) -> list[np.ndarray]:
    """Groups of row indices of `vectors`, largest first; groups under `min_size` are left out."""
    k = topic_count(len(vectors), config)
    if k == 0:
        return []
    # Imported here: scikit-learn takes seconds to import, and most commands never cluster.
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    # float64: scikit-learn's k-means++ takes a much slower, chunked path for float32.
    vectors = vectors.astype(np.float64)
    if len(vectors) > MINI_BATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, random_state=config.seed, n_init=3, batch_size=2048)
    else:
        model = KMeans(n_clusters=k, random_state=config.seed, n_init=3)
    # One BLAS/OpenMP thread: on a busy machine k-means' threads spin against each other and
    # run tens of times slower, and one thread gives the same result everywhere.
    with threadpool_limits(1):
        model.fit(vectors)
    labels = model.labels_
    groups = [np.flatnonzero(labels == c) for c in range(k)]
    groups = [g for g in groups if len(g) >= config.min_size]
    # Largest first, ties by the first member: an order that does not depend on k-means' ids.
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean direction of `vectors`."""
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def assign_threshold(vectors: np.ndarray, centre: np.ndarray, config: TopicConfig) -> float:
    """How similar a newcomer must be to `centre` to join the topic of `vectors`."""
    similarities = vectors @ centre
    return max(config.assign_floor, float(np.quantile(similarities, config.assign_quantile)))


def assign(
    vectors: np.ndarray, centres: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each vector, the index of the most similar centre it clears the threshold of (-1 for
    none), and that similarity."""
    if len(vectors) == 0 or len(centres) == 0:
        return np.full(len(vectors), -1), np.zeros(len(vectors))
    similarities = vectors @ centres.T
    best = similarities.argmax(axis=1)
    best_sim = similarities[np.arange(len(vectors)), best]
    return np.where(best_sim >= thresholds[best], best, -1), best_sim


def nearest(vectors: np.ndarray, centre: np.ndarray, n: int) -> list[int]:
    """Indices of the `n` rows of `vectors` most similar to `centre`, most similar first (ties
    by index, so the choice is stable)."""
    similarities = vectors @ centre
    order = sorted(range(len(vectors)), key=lambda i: (-float(similarities[i]), i))
    return order[:n]


@dataclass(frozen=True)
class TopicWords:
    """The content words of one topic's memories: one list of (key, surface) per memory."""

    memories: Sequence[Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class Background:
    """How common each term is across a whole scope, estimated from a sample of its memories:
    `counts` in the sample, `scale` = scope size / sample size, `classes` = how many classes
    (topics, and the unassigned) the scope is split into."""

    counts: Counter[str]
    scale: float
    classes: int


def class_keywords(
    classes: Sequence[TopicWords],
    wanted: Sequence[int],
    n: int,
    background: Background | None = None,
) -> dict[int, tuple[str, ...]]:
    """c-TF-IDF keywords of the classes whose indices are in `wanted`.

    How common a term is overall comes from all of `classes` (include a class of unassigned
    memories, so words common everywhere sink), or from `background` when only a few classes
    are given: an incremental build renames a handful of topics without reading the whole
    scope again. Each keyword is shown in its most frequent surface form ("InkSpot", "Tomás").
    """
    term_counts: list[Counter[str]] = []
    doc_counts: list[Counter[str]] = []
    surfaces: Counter[tuple[str, str]] = Counter()
    for words in classes:
        terms: Counter[str] = Counter()
        docs: Counter[str] = Counter()
        for memory in words.memories:
            terms.update(key for key, _ in memory)
            docs.update({key for key, _ in memory})
            surfaces.update(memory)
        term_counts.append(terms)
        doc_counts.append(docs)
    overall: Counter[str] = Counter()
    if background is None:
        for terms in term_counts:
            overall.update(terms)
        average = sum(overall.values()) / max(1, len(classes))
    else:
        overall.update({t: c * background.scale for t, c in background.counts.items()})
        average = sum(overall.values()) / max(1, background.classes)
    # The most frequent spelling; on a tie the lower-case one (a capital that only starts a
    # sentence is not a name).
    ranked = sorted(surfaces.items(), key=lambda kv: (-kv[1], kv[0][1] != kv[0][1].lower(), kv[0]))
    best_surface: dict[str, str] = {}
    for (key, surface), _count in ranked:
        best_surface.setdefault(key, surface)
    out: dict[int, tuple[str, ...]] = {}
    for index in wanted:
        terms, docs = term_counts[index], doc_counts[index]
        total = sum(terms.values()) or 1
        min_docs = min(2, len(classes[index].memories))
        scored = [
            (terms[t] / total * math.log(1 + average / max(overall[t], terms[t])), t)
            for t in terms
            if docs[t] >= min_docs
        ]
        scored.sort(key=lambda st: (-st[0], st[1]))
        out[index] = tuple(best_surface[t] for t in _without_overlaps([t for _, t in scored], n))
    return out


def _without_overlaps(ranked: list[str], n: int) -> list[str]:
    """The first `n` terms, where a word pair takes the place of its words ("half marathon"
    rather than "half" and "marathon") and a word already in a chosen pair is skipped."""
    chosen: list[str] = []
    for term in ranked:
        if len(chosen) == n:
            break
        parts = term.split()
        if len(parts) == 1:
            if not any(term in c.split() for c in chosen):
                chosen.append(term)
            continue
        if any(c == term or (len(c.split()) > 1 and set(c.split()) & set(parts)) for c in chosen):
            continue
        positions = [i for i, c in enumerate(chosen) if c in parts]
        if positions:
            chosen[positions[0]] = term
            chosen = [c for i, c in enumerate(chosen) if i == positions[0] or c not in parts]
        else:
            chosen.append(term)
    return chosen


class KeywordTopicNamer:
    """The offline namer: a topic is called by its top three keywords."""

    name = "offline-keywords"

    def name_topics(self, clusters: Sequence[TopicCluster]) -> list[TopicName]:
        return [TopicName(label=keyword_label(c.keywords)) for c in clusters]


def keyword_label(keywords: Sequence[str]) -> str:
    """A label made of keywords ("cuttlefish / camouflage / paper")."""
    return " / ".join(keywords[:3]) if keywords else "(miscellaneous)"
