"""Topic mechanics: how many clusters, deterministic clustering, c-TF-IDF keywords."""

from __future__ import annotations

import numpy as np

from memory.profile.records import Scope, TopicCluster
from memory.profile.sentences import content_words, topic_terms
from memory.profile.topics import (
    KeywordTopicNamer,
    TopicConfig,
    TopicWords,
    assign,
    class_keywords,
    cluster,
    topic_count,
)


def test_topic_count_grows_with_the_square_root_and_is_bounded() -> None:
    config = TopicConfig()
    assert topic_count(5, config) == 0  # too few to cluster
    assert topic_count(24, config) == 3
    assert topic_count(600, config) == 17
    assert topic_count(20000, config) == config.max_topics


def blobs(seed: int) -> np.ndarray:
    """Three well separated groups of 10 unit vectors and 2 strays."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3]
    points = [c + 0.05 * rng.normal(size=16) for c in centres for _ in range(10)]
    points += [np.eye(16)[10], np.eye(16)[11]]
    vectors = np.array(points, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_clustering_is_deterministic_and_drops_tiny_groups() -> None:
    vectors = blobs(0)
    config = TopicConfig(min_size=3)
    first = cluster(vectors, config)
    again = cluster(vectors.copy(), config)
    assert [g.tolist() for g in first] == [g.tolist() for g in again]
    # four clusters for 32 points: the three groups, and the strays, too few to be a topic
    assert topic_count(len(vectors), config) == 4
    assert len(first) == 3 and all(len(g) >= 3 for g in first)
    for start in (0, 10, 20):
        assert any(set(range(start, start + 10)) <= set(g.tolist()) for g in first)
    assert not {30, 31} <= {i for g in first for i in g.tolist()}


def test_newcomers_join_only_a_topic_they_are_close_to() -> None:
    centres = np.eye(4, dtype=np.float32)[:2]
    near = np.array([[0.9, 0.1, 0, 0], [0, 0, 1, 0]], dtype=np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    best, _ = assign(near, centres, np.array([0.5, 0.5]))
    assert best.tolist() == [0, -1]


def test_keywords_are_distinctive_frequent_words_and_pairs() -> None:
    texts = {
        "bread": [
            "Baked a sourdough loaf, the crust was great",
            "Fed the sourdough starter before the loaf",
            "Another sourdough loaf with rye flour",
        ],
        "climbing": [
            "Bouldering at Vertigo, the overhang is hard",
            "Overhang problems at Vertigo again tonight",
            "Half marathon training, then bouldering",
        ],
        "rest": ["Half marathon next month", "Half marathon done"],
    }
    classes = [TopicWords([topic_terms(t) for t in group]) for group in texts.values()]
    keywords = class_keywords(classes, [0, 1], 3)
    assert keywords[0] == ("sourdough loaf",)  # the pair, not its two words
    assert {"Vertigo", "overhang", "bouldering"} == set(keywords[1])
    # a word in only one of a topic's memories never names it
    assert "rye" not in keywords[0]


def test_a_word_pair_replaces_its_words() -> None:
    texts = [
        "Signed up for the half marathon in March",
        "Half marathon training: 16 km today",
        "The half marathon route crosses the bridge",
    ]
    classes = [TopicWords([topic_terms(t) for t in texts]), TopicWords([topic_terms("a bridge")])]
    keywords = class_keywords(classes, [0], 3)[0]
    assert "half marathon" in {k.casefold() for k in keywords}
    assert "half" not in keywords and "marathon" not in keywords


def test_content_words_skip_numbers_media_and_filler() -> None:
    words = [k for k, _ in content_words("Door code 4071 [photo] haha Biscuit's bed.jpg lol")]
    assert words == ["door", "code", "biscuit"]


def test_the_offline_namer_uses_the_top_keywords() -> None:
    cluster_ = TopicCluster(Scope.OWNER, ("cuttlefish", "camouflage", "paper", "tank"), (), 9)
    (name,) = KeywordTopicNamer().name_topics([cluster_])
    assert name.label == "cuttlefish / camouflage / paper"
