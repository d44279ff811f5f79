"""Turn tracking: which user turns are owed an answer, and what a ``turnComplete`` proves.

A turn the model is answering (or a pending call) is not a quiet point; a user turn is owed its
answer until the turn that answers it ends. The first answer after a user turn measures the
server's lag (round trip plus backlog), which sizes the settle window. When the one trigger
outstanding is answered, it and everything sent before it (and the BLOCKING answers the turn
waited for) were consumed: *evidence* a later handle covers them, stronger than timing.
"""

from __future__ import annotations

from typing import Final

from livemesh import wire

__all__ = ["TurnTracker"]

_LAG_SAMPLES: Final = 8


class TurnTracker:
    """The turn in progress and the user turns owed an answer (indices on this connection)."""

    __slots__ = (
        "_answer_heard",
        "_answer_text",
        "_lag_samples",
        "_turn_answers",
        "_turn_called",
        "_turn_interrupted",
        "answer_indices",
        "awaiting_reply_since",
        "continuing",
        "effect_at",
        "effect_seq",
        "evidence_index",
        "generating",
        "lag",
        "sure_triggers",
        "triggers",
        "turn_no",
        "voiced",
    )

    def __init__(self) -> None:
        self.generating = False
        self.continuing = False  # the last turnComplete said IN_PROGRESS: another model turn follows
        self.awaiting_reply_since: float | None = None
        self.turn_no = 0
        self.triggers: list[int] = []  # indices of turn triggers sent since the last turnComplete
        self.sure_triggers: list[int] = []  # ... of user turns whose turnComplete is owed
        self.answer_indices: list[int] = []  # ... of BLOCKING answers sent since then
        self.evidence_index = -1  # every message up to this index is known consumed
        self.voiced = False  # audio went out since the last turnComplete, with the server's VAD on
        self.effect_seq = 0  # frame sequence number of the newest turnComplete (seen by the user)
        self.effect_at = -1.0  # ... and when it was read
        self.lag = 0.0  # trigger sent -> first answer received: round trip plus server backlog
        self._lag_samples: list[float] = []  # the last few (their max is lag: backlog is bursty)
        # The answer text of the turn in progress while a user turn's answer is owed (model text,
        # else the output transcription): kept with that turn in the replay log once complete.
        self._answer_text: list[str] | None = None
        self._answer_heard: list[str] | None = None
        self._turn_called = False  # the turn in progress made a tool call
        # Whether the turn in progress answers the user's outstanding turns: None until its first
        # content, then whether a trigger was outstanding when it began (an unprompted turn, e.g.
        # a NON_BLOCKING tool's result, does not); and whether it was interrupted (its
        # turnComplete then ends it, not the turn the interruption was for).
        self._turn_answers: bool | None = None
        self._turn_interrupted = False

    def new_connection(self) -> None:
        """Indices start again at 0 and the server's turn state is the resumed context's."""
        self.evidence_index = -1
        self.voiced = False
        self.triggers = []
        self.sure_triggers = []
        self.answer_indices = []
        self.generating = False
        self.continuing = False
        self.awaiting_reply_since = None
        self._answer_text = self._answer_heard = None
        self._turn_called = False
        self._turn_answers = None
        self._turn_interrupted = False

    @property
    def in_turn_or_owed(self) -> bool:
        return self.generating or self.continuing or bool(self.sure_triggers)

    @property
    def owed(self) -> list[int]:
        """Indices consumed maybe, but not answered yet: never trimmed from the replay log."""
        return self.sure_triggers + self.answer_indices

    # ------------------------------------------------------------------ sent

    def sent(self, index: int, *, triggers: bool, expects_reply: bool, blocking_answer: bool,
             realtime: bool, manual_vad: bool, now: float) -> bool:
        """Message ``index`` is being written; True if it is a user turn a ping should prove."""
        if triggers:
            self.awaiting_reply_since = now
            self.triggers.append(index)
            if expects_reply:
                self.sure_triggers.append(index)
                return True
        elif blocking_answer:
            self.answer_indices.append(index)
        elif realtime and not manual_vad:
            self.voiced = True
        return False

    # ------------------------------------------------------------------ received

    def answer_started(self, now: float) -> None:
        """The first answer (content or a call) after the user's turn: a lag sample."""
        waiting = self.awaiting_reply_since
        if waiting is not None and self.sure_triggers and not self.generating:
            self._lag_samples.append(now - waiting)
            del self._lag_samples[:-_LAG_SAMPLES]
            self.lag = max(self._lag_samples)

    def content(self) -> None:
        """The model's content or a call arrived: a turn is in progress (its first content
        decides whether it answers the user's outstanding turns)."""
        if self._turn_answers is None:
            self._turn_answers = bool(self.triggers)
        self.generating = True

    def called(self) -> None:
        self.content()
        self._turn_called = True

    def model_text(self, parts: list[wire.Part] | None) -> None:
        if not self.sure_triggers:
            return
        for part in parts or ():
            if part.text and not part.thought:
                if self._answer_text is None:
                    self._answer_text = []
                self._answer_text.append(part.text)

    def heard(self, text: str | None) -> None:
        if text and self.sure_triggers:
            if self._answer_heard is None:
                self._answer_heard = []
            self._answer_heard.append(text)

    def interrupted(self) -> None:
        self._turn_interrupted = True
        self.generating = False
        self.awaiting_reply_since = None

    def completed(
        self, *, cut: bool, seq: int, now: float, calls_open: bool = False
    ) -> tuple[bool, int | None, wire.Content | None]:
        """A ``turnComplete`` (``cut``: this very frame says ``interrupted``; ``calls_open``: tool
        calls are still owed an answer).

        Returns (whether it answered the user's outstanding turns, the index of the user turn to
        keep with its answer in the replay log, that answer)."""
        cut = cut or self._turn_interrupted
        answered = not cut and self._turn_answers is not False
        keep: int | None = None
        answer: wire.Content | None = None
        if answered and len(self.triggers) == 1 and not self.voiced:
            # The one trigger outstanding was answered: it and everything before it were consumed,
            # and so were the BLOCKING answers the turn waited for. The next handle surely covers
            # them (evidence beats timing). Not if audio went out since the last turn: the
            # server's VAD may have made a turn of it, and this may be that turn's end, the
            # trigger still unread (taking it as evidence lost every message up to a trigger sent
            # in a burst after a move).
            self.evidence_index = max(self.evidence_index, self.triggers[0], *self.answer_indices)
            # A turn that called tools is kept too once its calls are answered: the user saw its
            # answer, and a resumed context without the turn does not know the calls either (their
            # answers are void there), so the turn and its answer are the history to restore. With
            # a call still open the turn goes on after this turnComplete: replayed, it is a turn.
            if self.sure_triggers == self.triggers and not (self._turn_called and calls_open):
                keep = self.triggers[0]
                text = "".join(self._answer_text or self._answer_heard or ())
                answer = wire.Content(role="model", parts=[wire.Part(text=text)] if text else [])
        self._answer_text = self._answer_heard = None
        self._turn_called = False
        self._turn_answers = None
        self._turn_interrupted = False
        self.voiced = False
        still_owed = not answered and bool(self.sure_triggers)  # the next turn answers them
        if not still_owed:
            self.triggers.clear()
            self.sure_triggers.clear()
            self.answer_indices.clear()
        self.effect_seq = seq
        self.effect_at = now
        self.turn_no += 1
        self.generating = False
        self.awaiting_reply_since = now if still_owed else None
        return answered, keep, answer
