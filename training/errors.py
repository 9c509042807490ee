"""The root of the training package's errors: `except TrainingBaseError` catches every one it raises on purpose.

    TrainingBaseError
    ├── loop.TrainingError(RuntimeError)                    a run cannot start or resume
    ├── corpora.DatasetError(ValueError)                    a corpus or dataset folder cannot be read
    ├── corpus.CorpusError(RuntimeError)                    the synthetic corpus cannot be built
    ├── sentences.SentenceSourceError(RuntimeError)         a sentence source is unavailable
    ├── speaker_encoder.SpeakerEncoderError(RuntimeError)   the speaker encoder cannot be loaded or run
    ├── evaluation.PairsError(ValueError)                   an evaluation pairs file is unusable
    ├── onnx_weights.OnnxWeightsError(ValueError)           ONNX weights do not fit the torch module
    └── export_onnx.ExportError(RuntimeError)               a checkpoint cannot be exported

Each keeps its old base as well, so `except ValueError` / `except RuntimeError` still catch what they caught. The
plain name TrainingError already means "a run cannot start or resume", hence the root's longer name.
"""

from __future__ import annotations


class TrainingBaseError(Exception):
    """The root of the training package's errors."""
