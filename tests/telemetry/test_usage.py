"""Token counts in the conventions' terms: input and output, by modality, adding up."""

from __future__ import annotations

from livemesh import wire
from livemesh.telemetry.usage import TokenCounts, token_counts


def _m(modality: str | None, count: int | None) -> wire.ModalityTokenCount:
    return wire.ModalityTokenCount(modality=modality, token_count=count)


def test_input_and_output_by_modality() -> None:
    usage = wire.UsageMetadata(
        prompt_token_count=150,
        tool_use_prompt_token_count=10,
        response_token_count=40,
        thoughts_token_count=5,
        prompt_tokens_details=[_m("TEXT", 50), _m("AUDIO", 90), _m("VIDEO", 10)],
        tool_use_prompt_tokens_details=[_m("TEXT", 10)],
        response_tokens_details=[_m("AUDIO", 40)],
    )
    assert token_counts(usage) == TokenCounts(
        input=160,
        output=45,
        input_by_modality=(("audio", 90), ("text", 60), ("video", 10)),
        output_by_modality=(("audio", 40), ("text", 5)),  # thoughts are text
    )


def test_what_no_breakdown_covers_is_unknown() -> None:
    usage = wire.UsageMetadata(
        prompt_token_count=100,
        response_token_count=7,
        prompt_tokens_details=[_m("TEXT", 60), _m("SOMETHING_NEW", 30), _m("AUDIO", None)],
    )
    counts = token_counts(usage)
    assert counts.input_by_modality == (("text", 60), ("unknown", 40))
    assert counts.output_by_modality == (("unknown", 7),)
    assert sum(c for _, c in counts.input_by_modality) == counts.input


def test_an_empty_report_counts_nothing() -> None:
    assert token_counts(wire.UsageMetadata()) == TokenCounts()
