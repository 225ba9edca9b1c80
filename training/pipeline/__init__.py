"""`twin train`: from memory to two registered, served models, in resumable stages.

    <home>/runs/<run-id>/
        run.json                 the options, the recipe (every number) and the base
        train.log                what every stage did
        loss.png                 the loss curves of every trainer, per model
        synthesize/              shared/ and owner/ datasets (samples, held-out split, pairs)
        sft-shared/ sft-owner/   LoRA adapters from supervised fine-tuning
        dpo-shared/ dpo-owner/   LoRA adapters from preference training, on top of SFT
        export/                  GGUF files, one per model and quantisation (until registered)
        evaluate/                held-out key-fact accuracy per model
        register/                the registry version this run became

Two audiences, two models. The shared model, which answers everyone but the owner, sees only
memories friends may see: the shared dataset is synthesized for the friend audience and
checked to cite nothing else. The owner's model trains on top of the shared SFT model and
learns the rest: the owner's dataset, from all memory. Private memories never enter anything
the shared model is made from.
"""

from training.pipeline.artifacts import (
    LOG_FILE,
    LOSS_PLOT,
    PipelineError,
    PrivacyViolation,
    RunRecord,
    Stage,
    StageRecord,
)
from training.pipeline.data import DataRequest, SynthesizedData, TrainingData
from training.pipeline.run import LogReporter, RunResult, TrainingRun
from training.pipeline.stages import check_audience

__all__ = [
    "LOG_FILE",
    "LOSS_PLOT",
    "DataRequest",
    "LogReporter",
    "PipelineError",
    "PrivacyViolation",
    "RunRecord",
    "RunResult",
    "Stage",
    "StageRecord",
    "SynthesizedData",
    "TrainingData",
    "TrainingRun",
    "check_audience",
]
