"""A load generator in its own process: bursts of signed `/imagine` commands, each burst sent at once.

    python bench/ack_load.py URL RESPONSE_URL SECRET LEVEL BURST USER...

Sends LEVEL concurrent slash commands (users taken round-robin from USER...), each signed as Slack signs
them (slack_sdk's SignatureVerifier), and prints one JSON object: the ms from send to HTTP answer of each,
and their statuses. bench_serve.py runs it once per burst, so the server's process and the sandbox's never
share a GIL with the client.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

from slack_sdk.signature import SignatureVerifier


def main(argv: list[str]) -> int:
    """Run one burst and print its latencies."""
    url, response_url, secret, level, burst = argv[0], argv[1], argv[2], int(argv[3]), argv[4]
    users = argv[5:]
    target = urlsplit(url)
    host = target.hostname
    assert host is not None, f"no host in {url}"
    verifier = SignatureVerifier(secret)
    gate = threading.Barrier(level)

    def send(n: int) -> tuple[int, float]:
        body = urlencode(
            {
                "command": "/imagine",
                "text": f"a lighthouse at dusk {burst}-{n}",
                "team_id": "T0001",
                "user_id": users[n % len(users)],
                "channel_id": "C0GENERAL",
                "trigger_id": f"{burst}.{n}.{time.time_ns()}",
                "response_url": response_url,
                "api_app_id": "A0IMAGINE",
            }
        )
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body) or "",
        }
        connection = http.client.HTTPConnection(host, target.port, timeout=30)
        gate.wait()
        started = time.perf_counter()
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        connection.close()
        return response.status, elapsed

    with ThreadPoolExecutor(max_workers=level) as pool:
        results = list(pool.map(send, range(level)))
    sys.stdout.write(json.dumps({"ms": [ms for _, ms in results], "status": [s for s, _ in results]}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
