"""The registry of known secrets and the one function that hides them."""

from __future__ import annotations

from ordersync import redaction
from ordersync.redaction import KEPT_TOKENS, REDACTED, redact, register, register_token


def test_a_registered_secret_is_hidden_wherever_it_appears():
    register("reg-Secret-0a1b2c3d")
    assert redact("vendor said: bad reg-Secret-0a1b2c3d, twice reg-Secret-0a1b2c3d!") == (
        f"vendor said: bad {REDACTED}, twice {REDACTED}!")


def test_longest_first_so_a_secret_containing_another_is_hidden_whole():
    register("nest-abcd", "nest-abcd-and-more")
    assert redact("x nest-abcd-and-more y nest-abcd") == f"x {REDACTED} y {REDACTED}"


def test_short_and_empty_values_are_not_secrets():
    register("ab", "", None)
    assert "ab" not in redaction.known() and "" not in redaction.known()
    assert redact("ab cd") == "ab cd"


def test_bearer_tokens_are_hidden_even_unregistered():
    assert redact("Authorization: Bearer eyJ.abc-def_123") == f"Authorization: Bearer {REDACTED}"


def test_extra_secrets_given_by_the_caller():
    assert redact("k=local-only-secret", ["local-only-secret"]) == f"k={REDACTED}"


def test_only_the_newest_tokens_are_kept():
    tokens = [f"tok-{n:04d}-zzzz" for n in range(KEPT_TOKENS + 3)]
    for token in tokens:
        register_token(token)
    text = " ".join(tokens)
    hidden = redact(text).split()
    assert hidden[:3] == tokens[:3]                     # long replaced, forgotten
    assert hidden[3:] == [REDACTED] * KEPT_TOKENS


def test_a_secret_is_hidden_as_form_and_url_encoding_spell_it():
    register("q8Zt+Vw/Lk3R r9==")
    text = "client_secret=q8Zt%2BVw%2FLk3R+r9%3D%3D&path=/x/q8Zt%2BVw%2FLk3R%20r9%3D%3D"
    assert redact(text) == f"client_secret={REDACTED}&path=/x/{REDACTED}"


def test_basic_credentials_are_hidden_even_unregistered():
    assert redact("Authorization: Basic Y2s6Y2xpZW50LXNlY3JldA==") == (
        f"Authorization: Basic {REDACTED}")
