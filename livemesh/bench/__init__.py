"""``python -m livemesh bench``: many sessions with real traffic, livemesh side by side with google-genai.

Layout (one job per module):

* :mod:`.workload` -- what each session does (numbered text turns, real-time audio, tool calls) and
  how loss/duplication is *measured* from the emulator's own ``recall``/``stats`` answers;
* :mod:`.metrics` -- counters, HDR latency histograms, client CPU and RSS (no async library);
* :mod:`.livemesh_client` / :mod:`.genai_client` -- the two runners, each in its own process;
* :mod:`.runner` -- the parent side of a runner process (spec in, progress lines and result out);
* :mod:`.server` -- the emulator in a separate process on a free loopback port;
* :mod:`.report` / :mod:`.progress` -- the JSON report, the summary table, the live progress;
* :mod:`.cli` -- argument parsing and orchestration (the only code here that prints).
"""
