"""Benchmark: messages per second of `parse_message` on one core.

Two sets:
- the corpus of ugly messages under tests/fixtures/emails/;
- generated typical mail: multipart/alternative text + HTML of 4-20 KB, three participants,
  and on one message in ten a base64 attachment of 100 KB - 2 MB.

For scale it also times the standard library's `BytesParser(policy=compat32)` on the same
typical messages (parsing only: no header decoding, no body decoding).

The first sync needs ~2,000 typical messages a second.
Run: `.venv/bin/python bench/parse_speed.py` (add `--messages 500` for a quick run).
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailsync.pipeline.parse import parse_message  # noqa: E402 - needs REPO on sys.path

CORPUS = REPO / "tests" / "fixtures" / "emails"
WORDS = [
    *("offer", "contract", "meeting", "tomorrow", "invoice", "price", "discount", "delivery"),
    *("schedule", "Angebot", "teklif", "zamówienie", "pakkumine", "offerte", "please"),
    *("regards", "thanks", "attached", "quarter", "report"),
]


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    paragraphs: list[str] = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90)))
        paragraphs.append(sentence.capitalize() + ".")
        total += len(sentence) + 2
    return paragraphs


def typical_message(rng: random.Random, number: int) -> bytes:
    paragraphs = _paragraphs(rng, rng.randint(1_500, 8_000))
    text = "\r\n\r\n".join(paragraphs)
    html = "".join(f'<p style="margin:0 0 12px">{p}</p>\r\n' for p in paragraphs)
    html = f"<html><body><div style='font-family:Arial'>{html}</div></body></html>"
    headers = (
        f"Message-ID: <bench-{number}@mail.example.com>\r\n"
        f"Date: Tue, 3 Sep 2024 09:{number % 60:02d}:00 +0200\r\n"
        f'From: "Ana Silva" <ana{number % 50}@example.com>\r\n'
        "To: Bob Brown <bob@example.org>\r\n"
        'Cc: "=?utf-8?Q?J=C3=BCrgen_Wei=C3=9F?=" <juergen@example.de>\r\n'
        f"Subject: Re: Angebot {number}\r\n"
        "References: <a-1@mail.example.com> <a-2@mail.example.com>\r\n"
        "In-Reply-To: <a-2@mail.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    alternative = (
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        f"{text}\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n--alt--\r\n"
    )
    if rng.random() >= 0.1:
        single = headers + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        return (single + alternative).encode()
    payload = base64.encodebytes(rng.randbytes(rng.randint(100_000, 2_000_000)))
    mixed = (
        headers
        + 'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
        + '--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        + alternative
        + "--mix\r\nContent-Type: application/pdf\r\n"
        + 'Content-Disposition: attachment; filename="offer.pdf"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return mixed + payload.replace(b"\n", b"\r\n") + b"--mix--\r\n"


def rate(messages: list[bytes], parse: Callable[[bytes], object], *, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in messages:
            parse(raw)
        best = min(best, time.perf_counter() - started)
    return len(messages) / best


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--messages", type=int, default=2_000)
    arguments.add_argument("--seed", type=int, default=1)
    options = arguments.parse_args()

    corpus = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    rng = random.Random(options.seed)
    typical = [typical_message(rng, number) for number in range(options.messages)]
    megabytes = sum(map(len, typical)) / 1e6
    compat32 = BytesParser(policy=policy.compat32)

    print(f"corpus: {len(corpus)} messages")
    print(f"  parse_message        {rate(corpus, parse_message, rounds=20):8,.0f} messages/s")
    print(f"typical: {len(typical)} messages, {megabytes:,.0f} MB")
    print(f"  parse_message        {rate(typical, parse_message, rounds=3):8,.0f} messages/s")
    print(f"  compat32 parse only  {rate(typical, compat32.parsebytes, rounds=1):8,.0f} messages/s")


if __name__ == "__main__":
    main()
