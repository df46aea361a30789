"""The anchor of the CLI labeling benchmarks: a hand-written labeling process, the least such a job can do.

``python -m benchmarks.client_anchor DB BASE_URL CONCURRENCY`` reads every document of a project's SQLite
database with sqlite3, sends one chat-completions request per document with a plain aiohttp session, a
Semaphore and gather (the prompt an f-string), parses each answer's JSON label, and writes the labels into
a database of their own (DB + ".anchor") with one executemany: what `annotator run` does for one uncached run, minus the
codebook, the templates, validation, retries, provenance and the ORM. Timed as a process, imports included.
It prints the number of labels it stored.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys


async def _label(base_url: str, texts: list[tuple[int, str]], concurrency: int) -> list[tuple[int, str]]:
    import aiohttp

    url = f"{base_url}/chat/completions"
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(doc_id: int, text: str) -> tuple[int, str]:
            payload = {
                "model": "loopback",
                "temperature": 0,
                "messages": [
                    {
                        "role": "system",
                        "content": "Label the sentiment of the text: negative, neutral or positive.",
                    },
                    {"role": "user", "content": f"Text: {text}"},
                ],
            }
            async with sem, session.post(url, json=payload) as response:
                data = await response.json()
            return doc_id, json.loads(data["choices"][0]["message"]["content"])["label"]

        return await asyncio.gather(*(one(i, t) for i, t in texts))


def main(argv: list[str]) -> int:
    path, base_url, concurrency = argv[0], argv[1], int(argv[2])
    with sqlite3.connect(path) as source:
        texts = source.execute("SELECT id, text FROM documents ORDER BY id").fetchall()
    labels = asyncio.run(_label(base_url, texts, concurrency))
    conn = sqlite3.connect(path + ".anchor")
    conn.execute("CREATE TABLE IF NOT EXISTS anchor_labels (document_id INTEGER, label TEXT)")
    conn.execute("DELETE FROM anchor_labels")
    conn.executemany("INSERT INTO anchor_labels VALUES (?, ?)", labels)
    conn.commit()
    print(len(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
