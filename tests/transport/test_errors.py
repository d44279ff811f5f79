"""Close classification and the errors built at the transport boundary (no I/O)."""

from __future__ import annotations

import ssl

import pytest

from livemesh.errors import (
    AuthError,
    CertificateError,
    ContextWindowError,
    QuotaError,
    ServiceClosedError,
    SetupRejectedError,
)
from livemesh.transport import (
    CloseInfo,
    ConnectionLostError,
    Redactor,
    classify_close,
    close_error,
    redact_url,
)
from livemesh.transport.errors import certificate_error


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (1007, "Request contains an invalid argument.", "fatal"),
        (1007, "API key expired. Please renew the API key.", "auth"),
        (1008, "Requested entity was not found.", "fatal"),
        (1008, "Method doesn't allow unregistered callers (callers without established identity).", "auth"),
        (1008, "The operation was aborted.", "fatal"),
        (1011, "Internal error occurred.", "retryable"),
        (1011, "Deadline expired before operation could complete.", "retryable"),
        (1011, "The service is currently unavailable.", "retryable"),
        (1011, "RESOURCE_EXHAUSTED: You exceeded your current quota (concurrent sessions).", "quota"),
        (1011, "Billing account disabled", "quota"),
        (1011, "You have run out of credits", "quota"),
        (1006, "", "retryable"),
        (1000, "", "retryable"),
        (1001, "", "retryable"),
        (1002, "", "fatal"),
    ],
)
def test_close_codes_are_classified(code: int, reason: str, kind: str) -> None:
    assert classify_close(code, reason) == kind


def test_close_errors_are_typed() -> None:
    invalid = close_error(CloseInfo(1007, "Request contains an invalid argument."))
    assert isinstance(invalid, ServiceClosedError)  # after setupComplete the setup is not to blame
    refused = close_error(CloseInfo(1007, "Request contains an invalid argument."), during_setup=True)
    assert isinstance(refused, SetupRejectedError)
    bad_key = close_error(CloseInfo(1008, "API key not valid. Please pass a valid API key."))
    assert isinstance(bad_key, AuthError)
    assert isinstance(close_error(CloseInfo(1011, "RESOURCE_EXHAUSTED")), QuotaError)
    window = close_error(
        CloseInfo(1007, "The input token count (131100) exceeds the maximum number of tokens allowed (1024).")
    )
    assert isinstance(window, ContextWindowError)  # not an AuthError for speaking of "tokens"
    assert "context_window_compression" in str(window)
    lost = close_error(CloseInfo(1011, "Internal error occurred."))
    assert isinstance(lost, ConnectionLostError)
    assert (lost.code, lost.reason) == (1011, "Internal error occurred.")
    polite = close_error(CloseInfo(1000, ""), during_setup=True)
    assert isinstance(polite, ConnectionLostError) and "during setup" in str(polite)


def test_redact_url_drops_query_and_userinfo() -> None:
    assert redact_url("wss://user:pw@host.example:443/ws/x?key=SECRET") == "wss://host.example:443/ws/x"


def test_the_redactor_knows_every_credential_the_request_carried() -> None:
    redact = Redactor.for_request(
        "wss://h/ws?key=QUERY-KEY&alt=json",
        [
            ("x-goog-api-key", "HEADER-KEY"),
            ("authorization", "Bearer ya29.TOKEN"),
            ("x-goog-user-project", "my-project"),  # not a credential
        ],
    )
    text = "got QUERY-KEY, HEADER-KEY, 'Bearer ya29.TOKEN' and bare ya29.TOKEN for my-project"
    assert redact(text) == "got <redacted>, <redacted>, '<redacted>' and bare <redacted> for my-project"
    assert redact.close_info(1008, text).reason == redact(text)
    assert redact.close_info(1000, "") == CloseInfo(1000, "")
    assert "TOKEN" not in repr(redact)


def test_a_refused_certificate_names_why_and_never_the_query() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "Hostname mismatch, certificate is not valid for '127.0.0.1'."
    error = certificate_error(exc, "wss://127.0.0.1:9/x?key=SECRET")
    assert isinstance(error, CertificateError)
    assert "Hostname mismatch" in str(error) and "SECRET" not in str(error)
