"""L1 memory: topics ("shades"), facts and bios built from L0, per audience.

`ProfileBuilder` builds it (offline writers by default; pass LLM-backed ones to do better),
`Profile` reads it for an audience. The tables, views and the triggers that keep L1 consistent
when memories are forgotten are migration 2 in `memory.migrations`.
"""

from memory.profile.bio import TemplateBioWriter
from memory.profile.builder import BuildProgress, ProfileBuilder, ProfileConfig
from memory.profile.db import ProfileBuildConflict, ProfileIntegrityError
from memory.profile.fact_patterns import PatternFactExtractor
from memory.profile.read import Profile
from memory.profile.records import (
    BioFact,
    BioRequest,
    BioTexts,
    BioTopic,
    BioView,
    BuildReport,
    FactDraft,
    FactView,
    ProfileView,
    Scope,
    ScopeStats,
    TopicCluster,
    TopicName,
    TopicView,
)
from memory.profile.topics import KeywordTopicNamer, TopicConfig
from memory.profile.writers import BioWriter, FactExtractor, TopicNamer

__all__ = [
    "BioFact",
    "BioRequest",
    "BioTexts",
    "BioTopic",
    "BioView",
    "BioWriter",
    "BuildProgress",
    "BuildReport",
    "FactDraft",
    "FactExtractor",
    "FactView",
    "KeywordTopicNamer",
    "PatternFactExtractor",
    "Profile",
    "ProfileBuildConflict",
    "ProfileBuilder",
    "ProfileConfig",
    "ProfileIntegrityError",
    "ProfileView",
    "Scope",
    "ScopeStats",
    "TemplateBioWriter",
    "TopicCluster",
    "TopicConfig",
    "TopicName",
    "TopicNamer",
    "TopicView",
]
