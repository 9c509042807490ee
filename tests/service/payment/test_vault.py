from __future__ import annotations

from service.payment.vault import KEEP_AFTER_VALID_BEFORE_S, AudioVault


def test_the_audio_vault_is_bounded_and_forgets_after_valid_before() -> None:
    now = [1000.0]
    vault = AudioVault(max_entries=2, max_bytes=10, clock=lambda: now[0])
    answer = (200, [(b"content-type", b"audio/wav")], b"12345")
    vault.hold("0xA", "0x1", "digest-1", answer, valid_before=1100)
    vault.hold("0xA", "0x2", "digest-2", answer, valid_before=1100)
    vault.hold("0xA", "0x3", "digest-3", answer, valid_before=1100)  # over both bounds: the oldest goes
    assert (vault.has("0xa", "0x1"), vault.has("0xa", "0x2"), vault.has("0xa", "0x3")) == (False, True, True)
    assert vault.get("0xA", "0x2", "another header") is None  # only the very header that paid
    assert vault.get("0xA", "0x2", "digest-2") is not None
    now[0] = 1100 + KEEP_AFTER_VALID_BEFORE_S
    assert len(vault) == 0
