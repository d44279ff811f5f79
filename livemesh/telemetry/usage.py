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
"""

from __future__ import annotations

from typing import NamedTuple

from livemesh import wire
from livemesh.telemetry.names import modality

__all__ = ["TokenCounts", "token_counts"]


class TokenCounts(NamedTuple):
    """One usage report: totals per token type and the same split by modality (sorted)."""

    input: int = 0
    output: int = 0
    input_by_modality: tuple[tuple[str, int], ...] = ()
    output_by_modality: tuple[tuple[str, int], ...] = ()


_Details = list[wire.ModalityTokenCount] | None


def _split(
    total: int, details: _Details, more: _Details = None, extra_text: int = 0
) -> tuple[tuple[str, int], ...]:
    found: dict[str, int] = {"text": extra_text} if extra_text else {}
    covered = 0
    for group in (details, more):
        for item in group or ():
            count = item.token_count
            if count:
                key = modality(item.modality)
                found[key] = found.get(key, 0) + count
                covered += count
    if total > covered:
        found["unknown"] = found.get("unknown", 0) + total - covered
    return tuple(sorted(found.items()))


def token_counts(usage: wire.UsageMetadata) -> TokenCounts:
    """The input and output tokens ``usage`` reports, total and by modality.

    Args:
        usage: a ``usageMetadata`` as the session decoded it.

    Returns:
        The counts; zero where the report is silent.
    """
    prompt = (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    thoughts = usage.thoughts_token_count or 0
    response = usage.response_token_count or 0
    return TokenCounts(
        prompt,
        response + thoughts,
        _split(prompt, usage.prompt_tokens_details, usage.tool_use_prompt_tokens_details),
        _split(response, usage.response_tokens_details, extra_text=thoughts),  # thoughts are text
    )
