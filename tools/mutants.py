"""Hand-made mutants of the producer and consumer bookkeeping, each checked against the unit suites.

Each mutant is one source edit; the unit tests of the producer and consumer state machines must fail
on every one (issue #14, "Tests that let real bugs through").  Run from the repository root::

    python tools/mutants.py            # prints KILLED / SURVIVED per mutant; exit 1 if one survived

Files are restored after each run, also on Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path("core/src/rabbitstream")
TESTS = [
    "core/tests/test_producer_publisher.py",
    "core/tests/test_producer_state.py",
    "core/tests/test_producer_interleaving.py",
    "core/tests/test_consumer_unit.py",
    "core/tests/test_consumer_state.py",
    "core/tests/test_consumer_interleaving.py",
]
PUB = "_producer/_publisher.py"

#: (name, file, original text, mutated text)
MUTANTS: list[tuple[str, str, str, str]] = [
    ("add: caller-set id == next id does not advance", PUB,
     "                if pid >= self.next_id:\n", "                if pid > self.next_id:\n"),
    ("attach: confirms ids < last_sequence", PUB,
     "if i <= last_sequence]", "if i < last_sequence]"),
    ("wait_room: window one smaller", PUB,
     "while self.inflight + n > self.limit and", "while self.inflight + n >= self.limit and"),
    ("fail_ids: sub-entry weight ignored", PUB,
     "            done += self.sub_weights.pop(i, 1)\n",
     "            self.sub_weights.pop(i, 1)\n            done += 1\n"),
    ("expire: < instead of <=", PUB, "while dl and dl[0][0] <= now:", "while dl and dl[0][0] < now:"),
    ("_register_cb: any callback taken as the shared one", PUB,
     "            if callback == cb_all:", "            if callback is not None:"),
    ("on_confirm: wakes one slot late", PUB,
     "and self.inflight < self.limit:", "and self.inflight < self.limit - 1:"),
    ("attach: last_sequence == next id kept", PUB,
     "            if last_sequence >= self.next_id:", "            if last_sequence > self.next_id:"),
    ("send: window one larger", "_producer/_producer.py",
     "        if pub.inflight >= pub.limit:\n", "        if pub.inflight > pub.limit:\n"),
    ("resend: duplicate copies not re-sent", PUB,
     "                self._write_entry(i, entry, weight)\n", "                pass\n"),
    ("close: publishers not marked failed", "_producer/_producer.py",
     ', ProducerClosedError("the producer was closed"))\n        self._publishers',  # in close()
     ")\n        self._publishers"),
    ("chunk_done: offset 0 not tracked", "_consumer/_sub.py",
     "        if last_offset >= 0:\n", "        if last_offset > 0:\n"),
    ("on_chunk: chunk ending at the requested offset kept", "_consumer/_sub.py",
     "            if end <= skip:", "            if end < skip:"),
    ("undecodable: queue not cleared", "_consumer/_sub.py",
     "        self.queue.clear()\n        self.next_offset = offset", "        self.next_offset = offset"),
    ("undecodable: resume offset not reset", "_consumer/_sub.py",
     "        self.queue.clear()\n        self.next_offset = offset", "        self.queue.clear()"),
    ("store_tracked: same offset stored again", "_consumer/_sub.py",
     "if offset is None or offset == self.stored_offset or", "if offset is None or"),
    ("on_chunk: trimmed start off by one", "_consumer/_sub.py",
     "            start = skip\n", "            start = skip - 1\n"),
]  # fmt: skip


def main() -> int:
    env = dict(os.environ, RABBITSTREAM_SCHEDULES=os.environ.get("RABBITSTREAM_SCHEDULES", "400"))
    survived = 0
    for name, file, old, new in MUTANTS:
        path = SRC / file
        original = path.read_text()
        if original.count(old) != 1:
            print(f"{name}: pattern not found once in {path}")
            survived += 1
            continue
        path.write_text(original.replace(old, new))
        try:
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                "--timeout",
                "60",
                *TESTS,
            ]
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        finally:
            path.write_text(original)
        killer = next((line for line in result.stdout.splitlines() if line.startswith("FAILED")), "")
        print(f"{'KILLED  ' if result.returncode else 'SURVIVED'} {name}  {killer[7:].split(' - ')[0]}")
        survived += result.returncode == 0
    print(f"{len(MUTANTS) - survived} of {len(MUTANTS)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
