"""A vendor's body-aware classifier: consulted for error answers before the status table."""

from __future__ import annotations

from ordersync.errors import AuthError, RateLimited, Rejected
from ordersync.http_answers import Response, error_for


def answer(status: int, body: bytes) -> Response:
    return Response(status, {}, body, "GET", "https://vendor.example/api/orders")


def says_rate_limit(status: int, headers, body: bytes):
    return RateLimited if b"rate limit" in body.lower() else None


def test_classifier_turns_a_403_that_says_rate_limit_into_rate_limited():
    error = error_for(answer(403, b'{"message": "Rate limit exceeded"}'), safe=False, now=0.0,
                      vendor="v", classifier=says_rate_limit)
    assert isinstance(error, RateLimited)
    assert error.message == "Rate limit exceeded" and error.retry_after_s is None


def test_classifier_without_an_answer_leaves_the_status_table_in_charge():
    forbidden = error_for(answer(403, b'{"message": "No right to write"}'), safe=True, now=0.0,
                          vendor="v", classifier=says_rate_limit)
    assert type(forbidden) is AuthError and forbidden.status == 403
    refused = error_for(answer(400, b'{"message": "Only drafts"}'), safe=False, now=0.0,
                        vendor="v", classifier=says_rate_limit,
                        overrides={403: Rejected})
    assert type(refused) is Rejected and refused.message == "Only drafts"


def test_classifier_is_never_asked_about_a_success():
    asked = []
    ok = error_for(answer(200, b"rate limit"), safe=True, now=0.0, vendor="v",
                   classifier=lambda *answer: asked.append(answer) or RateLimited)
    assert ok is None and asked == []
