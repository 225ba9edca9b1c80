"""Serving: the Twin answers (memory QA, context enhance, context critic) from retrieval, the
trained models and the output guard. `service.Twin` is what every face calls."""
