"""Token counts from a ``usageMetadata``, in the GenAI conventions' terms (no OpenTelemetry here).

The Live API reports tokens as prompt, cached, response, tool-use prompt and thoughts, with a
per-modality breakdown for most of them. The conventions count two types, ``input`` (including
cached tokens) and ``output`` (including reasoning tokens), optionally split by modality. So:

* input  = ``promptTokenCount`` + ``toolUsePromptTokenCount``, by modality from
  ``promptTokensDetails`` and ``toolUsePromptTokensDetails``;
* output = ``responseTokenCount`` + ``thoughtsTokenCount``, by modality from
  ``responseTokensDetails`` (thoughts are text).

Tokens a total reports but no breakdown covers are counted under ``unknown``, so the modalities
always add up to the total.

A session reports usage once per model turn, so :func:`add_token_counts` adds straight into the
caller's running totals: no intermediate objects, no sorting.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

from livemesh import wire
from livemesh.telemetry.names import modality

__all__ = ["TokenCounts", "add_token_counts", "token_counts"]

_K = TypeVar("_K")
_Details = list[wire.ModalityTokenCount] | None


class TokenCounts(NamedTuple):
    """One usage report: totals per token type and the same split by modality (sorted)."""

    input: int = 0
    output: int = 0
    input_by_modality: tuple[tuple[str, int], ...] = ()
    output_by_modality: tuple[tuple[str, int], ...] = ()


def _split(into: dict[tuple[_K, str], int], key: _K, total: int, *groups: _Details) -> None:
    covered = 0
    for group in groups:
        for item in group or ():
            count = item.token_count
            if count:
                found = (key, modality(item.modality))
                into[found] = into.get(found, 0) + count
                covered += count
    if total > covered:
        found = (key, "unknown")
        into[found] = into.get(found, 0) + total - covered


def add_token_counts(
    usage: wire.UsageMetadata, into: dict[tuple[_K, str], int], input_key: _K, output_key: _K
) -> tuple[int, int]:
    """Add the input and output tokens ``usage`` reports, by modality, to running totals.

    Args:
        usage: a ``usageMetadata`` as the session decoded it.
        into: totals keyed by ``(input_key or output_key, modality)``; updated in place.
        input_key: the first half of the keys input tokens are added under.
        output_key: the first half of the keys output tokens are added under.

    Returns:
        The report's input and output totals (zero where it is silent).
    """
    prompt = (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    thoughts = usage.thoughts_token_count or 0
    response = usage.response_token_count or 0
    _split(into, input_key, prompt, usage.prompt_tokens_details, usage.tool_use_prompt_tokens_details)
    if thoughts:  # thoughts are text
        found = (output_key, "text")
        into[found] = into.get(found, 0) + thoughts
    _split(into, output_key, response, usage.response_tokens_details)
    return prompt, response + thoughts


def token_counts(usage: wire.UsageMetadata) -> TokenCounts:
    """The input and output tokens ``usage`` reports, total and by modality.

    Args:
        usage: a ``usageMetadata`` as the session decoded it.

    Returns:
        The counts; zero where the report is silent.
    """
    found: dict[tuple[str, str], int] = {}
    total_in, total_out = add_token_counts(usage, found, "input", "output")

    def by_modality(kind: str) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((name, count) for (of, name), count in found.items() if of == kind))

    return TokenCounts(total_in, total_out, by_modality("input"), by_modality("output"))
