"""What training and serving share: settings and the home (`config`), audiences and what they
may see (`privacy`), the three tasks' prompt contract (`tasks`), model versions (`registry`),
building an LLM from settings (`llm_factory`), ingesting into the home (`ingest`) and picking L1
writers (`profile_writers`)."""
