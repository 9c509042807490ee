from __future__ import annotations

from tests.conftest import errors_defined_in
from training.errors import TrainingBaseError


def test_every_training_error_derives_from_the_root() -> None:
    errors = errors_defined_in("training")
    names = {cls.__name__ for cls in errors}
    # The tree drawn in training/errors.py: if the walk stops finding these, it proves nothing.
    expected = {"TrainingError", "DatasetError", "CorpusError", "SentenceSourceError", "SpeakerEncoderError"}
    expected |= {"PairsError", "OnnxWeightsError", "ExportError"}
    assert expected <= names
    assert [cls.__qualname__ for cls in errors if not issubclass(cls, TrainingBaseError)] == []


def test_each_training_error_keeps_its_old_base() -> None:
    errors = {cls.__name__: cls for cls in errors_defined_in("training")}
    for name in ("DatasetError", "PairsError", "OnnxWeightsError"):
        assert issubclass(errors[name], ValueError), name
    for name in ("TrainingError", "CorpusError", "SentenceSourceError", "SpeakerEncoderError", "ExportError"):
        assert issubclass(errors[name], RuntimeError), name
