"""The local model: annotator's labels/s against calling the same llama.cpp server directly.

Both sides start a server for SmolLM2 (annotator starts its own for the run), send the same rendered
prompts with the same JSON schema and parameters one at a time, and stop the server; the figure is
annotator's labels/s as a share of the direct client's (target >= 90%).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

N = 40


def main() -> None:
    import openai

    from annotator.llm import local
    from annotator.llm.spec import RunRequest, resolve
    from annotator.services import run as runner
    from benchmarks.bench_labeling import _project

    local.ensure("smollm2")
    with tempfile.TemporaryDirectory() as name:
        project = _project(Path(name) / "p", N)
        request = RunRequest(
            prompt="sentiment/zero-shot.v1", model="local/smollm2", split="dev", cache=False, concurrency=1
        )
        with project.transaction() as session:
            resolved = resolve(project, session, request)
        payloads = [
            {
                "model": "smollm2",
                "messages": resolved.messages(item),
                **resolved.params,
                "response_format": resolved.response_format,
                **({"logprobs": True, "top_logprobs": 5} if resolved.logprobs else {}),
            }
            for item in resolved.items()
        ]
        directs, rates = [], []
        for i in range(2):  # alternate, so that neither side gets the warmer machine
            start = time.perf_counter()
            with local.LocalServer("smollm2", parallel=1) as server:
                client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
                for payload in payloads:
                    client.chat.completions.create(**payload)
            directs.append(N / (time.perf_counter() - start))
            start = time.perf_counter()
            outcome = runner.label(project, RunRequest(**{**request.__dict__, "tag": f"bench-{i}"}))
            assert outcome.stats.done == N
            rates.append(N / (time.perf_counter() - start))
    direct = max(directs)
    ours = max(rates)
    print(f"  {N} labels with SmolLM2 (server start included, one request at a time):")
    print(
        f"    direct openai client to the llama.cpp server (best of {', '.join(f'{r:.2f}' for r in directs)}): "
        f"{direct:5.2f} labels/s"
    )
    print(
        f"    annotator run (best of {', '.join(f'{r:.2f}' for r in rates)}):       {ours:5.2f} labels/s  "
        f"{ours / direct:5.1%} of direct (target 90%)"
    )


if __name__ == "__main__":
    main()
