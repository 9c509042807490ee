"""Commands of the `smalltts` CLI that live with the Python API (batch, interactive); each exposes `register`."""
