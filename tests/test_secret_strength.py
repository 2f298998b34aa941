"""Weak secrets refuse start-up, not just the exact placeholders; demo mode's
generated secrets pass; the error names the setting and never the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from relto.config import PLACEHOLDER_SECRETS, Settings, secret_weakness
from relto.errors import ConfigError

STRONG = "Vq7#xP2m!Lr9-kT4w"


@pytest.mark.parametrize(
    "weak",
    [
        "changemechangeme",
        "aaaaaaaaaaaaaaaa",
        "abcabcabcabcabcabc",
        "passwordpassword",
        "changeme-12345678",
        "Secret_Secret_2024",
        "aaaaaaaaaaaaaaab",  # 2 distinct characters
        "0000000011111111",
    ],
)
@pytest.mark.parametrize("setting", ["secret_key", "keystore_passphrase"])
def test_low_entropy_secret_refuses_start(tmp_path: Path, weak: str, setting: str) -> None:
    values = {"secret_key": SecretStr(STRONG), "keystore_passphrase": SecretStr(STRONG)}
    values[setting] = SecretStr(weak)
    with pytest.raises(ConfigError) as info:
        Settings(data_dir=tmp_path, **values).check_startup()  # type: ignore[arg-type]
    message = str(info.value)
    assert f"RELTO_{setting.upper()}" in message
    assert weak not in message and weak.lower() not in message.lower()
    assert "\n" not in message


@given(unit=st.text(min_size=1, max_size=8), times=st.integers(min_value=2, max_value=20))
def test_any_repeated_unit_is_weak(unit: str, times: int) -> None:
    assert secret_weakness(unit * times) is not None


@given(st.text(max_size=15))
def test_anything_short_is_weak(value: str) -> None:
    assert secret_weakness(value) is not None


@given(
    words=st.lists(st.sampled_from(sorted(w for w in PLACEHOLDER_SECRETS if w)), min_size=1),
    tail=st.text(alphabet="0123456789-_!. ", max_size=12),
)
def test_placeholder_words_with_digits_are_weak(words: list[str], tail: str) -> None:
    assert secret_weakness("".join(words) + tail) is not None


def test_demo_secrets_pass_the_rule(tmp_path: Path) -> None:
    for i in range(20):
        settings = Settings(data_dir=tmp_path / str(i), demo=True).with_demo_secrets()
        for name in ("secret_key", "keystore_passphrase"):
            value = getattr(settings, name)
            assert value is not None
            assert secret_weakness(value.get_secret_value()) is None
        settings.model_copy(update={"demo": False}).check_secrets()


@pytest.mark.parametrize(
    "good",
    [STRONG, "correct horse battery staple kas", "a-real-looking-secret-0123456789"],
)
def test_real_secrets_are_accepted(good: str) -> None:
    assert secret_weakness(good) is None
