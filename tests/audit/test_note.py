"""C2SP signed notes and cosignatures: known answers from golang.org/x/mod/sumdb/note
and transparency-dev/formats, and the ways a note can be forged."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relto.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_body
from relto.audit.errors import InvalidNote, UnknownKey
from relto.audit.note import (
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    add_signatures,
    cosignature_message,
    open_note,
    parse_note,
    parse_verifier,
    sign_note,
)

# golang.org/x/mod/sumdb/note, note_test.go (public test key).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# transparency-dev/formats note_cosigv1_test.go: a type-0x04 key and a '+' in base64.
COSIG_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def test_go_known_answer_signature_reproduced() -> None:
    signer = NoteSigner.from_skey(GO_SKEY)
    assert signer.verifier().vkey == GO_VKEY
    assert signer.skey == GO_SKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE


def test_go_known_answer_note_verifies() -> None:
    opened = open_note(GO_NOTE, [parse_verifier(GO_VKEY)])
    assert opened.text == GO_TEXT


def test_tampered_note_text_rejected() -> None:
    with pytest.raises(InvalidNote):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [parse_verifier(GO_VKEY)])


def test_third_party_verifier_keys_parse_with_their_key_ids() -> None:
    assert isinstance(parse_verifier(COSIG_VKEY), CosignatureVerifier)
    assert isinstance(parse_verifier(PLUS_VKEY), NoteVerifier)
    assert parse_verifier(COSIG_VKEY).vkey == COSIG_VKEY


@pytest.mark.parametrize(
    "vkey",
    [
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+12345678+AwEB",
        "PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_or_mismatched_verifier_key_rejected(vkey: str) -> None:
    with pytest.raises(InvalidNote):
        parse_verifier(vkey)


def test_signature_from_unknown_key_ignored_but_one_known_needed() -> None:
    other = NoteSigner.generate("PeterNeumann")  # same name, different key ID
    note = add_signatures(GO_NOTE, other.sign(GO_TEXT))
    assert open_note(note, [parse_verifier(GO_VKEY)]).text == GO_TEXT
    with pytest.raises(UnknownKey):
        open_note(GO_NOTE, [other.verifier()])


def test_known_key_with_bad_signature_rejects_whole_note() -> None:
    signer = NoteSigner.generate("log.example")
    good = sign_note(GO_TEXT, signer)
    forged = add_signatures(GO_NOTE, signer.sign("something else\n"))
    assert open_note(good, [signer.verifier()])
    with pytest.raises(InvalidNote):
        open_note(forged, [signer.verifier(), parse_verifier(GO_VKEY)])


def test_cosignature_signs_the_v1_message_with_timestamp() -> None:
    witness = NoteSigner.generate("witness.example/w1")
    body = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    sig = witness.cosign(body, 1679315147)
    assert sig.key_id == witness.cosignature_verifier().key_id != witness.key_id
    assert sig.signature[:8] == (1679315147).to_bytes(8, "big")
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )
    witness.cosignature_verifier()._key.verify(
        sig.signature[8:], cosignature_message(body, 1679315147)
    )
    opened = open_note(body + "\n" + sig.line(), [witness.cosignature_verifier()])
    assert opened.timestamps == {"witness.example/w1": 1679315147}


def test_cosignature_not_accepted_as_plain_signature() -> None:
    witness = NoteSigner.generate("witness.example/w1")
    body = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    note = body + "\n" + witness.cosign(body, 1).line()
    with pytest.raises(UnknownKey):
        open_note(note, [witness.verifier()])


def test_cosignature_with_altered_timestamp_rejected() -> None:
    witness = NoteSigner.generate("witness.example/w1")
    body = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    sig = witness.cosign(body, 1000)
    from relto.audit.note import Signature

    moved = Signature(sig.name, sig.key_id, (2000).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(InvalidNote):
        open_note(body + "\n" + moved.line(), [witness.cosignature_verifier()])


@pytest.mark.parametrize(
    "bad",
    [
        b"no signatures\n",
        b"text\n\n- name AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 name AAAAAAAA",
        b"text\x01\n\n\xe2\x80\x94 name AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 name !!!\n",
        b"text\n\n\xe2\x80\x94 na+me AAAAAAAA\n",
        b"\xff\n\n\xe2\x80\x94 name AAAAAAAA\n",
    ],
)
def test_malformed_note_rejected(bad: bytes) -> None:
    with pytest.raises(InvalidNote):
        parse_note(bad)


@given(st.binary(max_size=300))
def test_note_parser_never_crashes(data: bytes) -> None:
    with contextlib.suppress(InvalidNote):
        parse_note(data)


def test_checkpoint_round_trip_and_forgery() -> None:
    signer = NoteSigner.generate("relto.example/log")
    cp = Checkpoint("relto.example/log", 20852163, bytes(range(32)))
    note = sign_note(cp.body(), signer)
    assert open_checkpoint(note, signer.verifier()).checkpoint == cp
    forged = note.replace("20852163", "20852164")
    with pytest.raises(InvalidNote):
        open_checkpoint(forged, signer.verifier())
    other = NoteSigner.generate("other.example/log")
    with pytest.raises(InvalidNote):
        open_checkpoint(sign_note(cp.body(), other), other.verifier())  # origin mismatch


@pytest.mark.parametrize(
    "body",
    [
        "log\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "log\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "log\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "log\n1\n",
        "log\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
    ],
)
def test_malformed_checkpoint_body_rejected(body: str) -> None:
    with pytest.raises(InvalidNote):
        parse_checkpoint_body(body)
