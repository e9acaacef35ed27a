from __future__ import annotations

import base64

import pytest

from edgeproxy.domain.secrets import KeyRing, SecretError, generate_kek, kek_id, parse_kek


def test_seal_and_open_round_trip_with_a_fresh_nonce_each_time() -> None:
    ring = KeyRing(parse_kek(generate_kek()))
    first = ring.seal("shop", b"secret key bytes")
    second = ring.seal("shop", b"secret key bytes")
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert len(first.nonce) == 12
    assert b"secret key bytes" not in first.ciphertext
    assert first.key_id == ring.current_id
    assert ring.open("shop", first) == b"secret key bytes"


def test_a_record_opens_only_under_its_own_name() -> None:
    ring = KeyRing(parse_kek(generate_kek()))
    sealed = ring.seal("shop", b"k")
    with pytest.raises(SecretError, match="altered"):
        ring.open("other", sealed)


def test_an_unknown_key_id_is_named_and_rotation_reseals_under_the_new_key() -> None:
    old, new = parse_kek(generate_kek()), parse_kek(generate_kek())
    sealed = KeyRing(old).seal("shop", b"k")
    with pytest.raises(SecretError, match=kek_id(old)):
        KeyRing(new).open("shop", sealed)
    resealed = KeyRing(new, (old,)).reseal("shop", sealed)
    assert resealed.key_id == kek_id(new) != sealed.key_id
    assert KeyRing(new).open("shop", resealed) == b"k"


def test_text_form_round_trips_and_repr_hides_the_ciphertext() -> None:
    ring = KeyRing(parse_kek(generate_kek()))
    sealed = ring.seal("shop", b"k")
    assert type(sealed).from_text(*sealed.to_text()) == sealed
    assert base64.b64encode(sealed.ciphertext).decode() not in repr(sealed)


@pytest.mark.parametrize(
    ("text", "message"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "decodes to 5 bytes")],
)
def test_a_bad_kek_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_kek(text)
