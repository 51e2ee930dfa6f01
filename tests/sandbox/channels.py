"""The cross-evaluation channels family of the attack corpus.

Each channel is one rule file, as a deployment would have it: evaluated for the victim
(`role: "write"`, with the victim's secret in its input) it tries to leave a trace of the
secret somewhere the process keeps; evaluated for the attacker (`role: "read"`) it reports
in `out["seen"]` everything it can observe. The attacker's evaluation must be a function
of its own input only: the same read, before and after the write, answers the same
(DESIGN.md section 8).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

BOTH = ("inprocess", "process")


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    threat: str
    source: str
    runners: tuple[str, ...] = BOTH


def channel(name: str, threat: str, source: str, runners: tuple[str, ...] = BOTH) -> Channel:
    return Channel(name, threat, textwrap.dedent(source).lstrip("\n"), runners)


# Secrets and probe keys no other test uses, so the process's history cannot mask a channel.
SECRETS = ("victim-7f3a@example.com", "victim-91c2@example.com")
PREFIXES = (3, 5, 9, 13, 17, 19, 23, 27, 29, 31)

CHANNELS: tuple[Channel, ...] = (
    channel("re_cache_membership_by_float_flags",
            "re.compile(p, 0.0) returned on a hit of re's module cache and raised on a miss: a rule "
            "wrote the victim's email as a pattern and read it back during its own login", """
            CANDIDATES = ["victim-7f3a@example.com", "victim-91c2@example.com", "nobody@example.com"]
            def cached(pattern):
                try:
                    re.compile(pattern, 0.0)
                    return True
                except Exception:
                    return False
            def rule(data, out):
                if data["role"] == "write":
                    re.match(data["secret"], "")
                else:
                    out["seen"] = [cached(candidate) for candidate in CANDIDATES]
            """),
    channel("re_cache_membership_by_eviction_order",
            "re's module cache evicts the oldest entry and a hit does not refresh it: whether a "
            "pattern survives a run of fresh patterns tells whether an earlier evaluation used it", """
            def rule(data, out):
                secret = "victim-7f3a@example.com"
                if data["role"] == "write":
                    re.compile(secret)
                    for number in range(600):
                        re.compile("write-filler-" + str(number))
                    re.compile(secret)
                    for number in range(100):
                        re.compile("write-tail-" + str(number))
                else:
                    first = re.compile(secret)
                    for number in range(511):
                        re.compile(secret + "#" + str(number))
                    out["seen"] = [first is re.compile(secret)]
            """),
    channel("re_cache_membership_by_pattern_identity",
            "a cache shared by evaluations returned the Pattern an earlier evaluation compiled, whose "
            ".pattern is that evaluation's string object: `re.compile(p).pattern is p` was false on a hit", """
            CANDIDATES = ["victim-7f3a@example.com", "victim-91c2@example.com", "nobody@example.com"]
            def rule(data, out):
                if data["role"] == "write":
                    re.compile("".join(["", data["secret"]]))
                else:
                    seen = []
                    for candidate in CANDIDATES:
                        fresh = "".join(["", candidate])
                        seen.append(re.compile(fresh).pattern is fresh)
                    out["seen"] = seen
            """),
    channel("re_cache_eviction_seen_from_a_module_level_pattern",
            "a module-level pattern is shared by every evaluation; `P is re.compile(same)` told whether "
            "other evaluations had pushed it out of a shared cache", """
            P = re.compile("module-level-6b1f")
            def rule(data, out):
                if data["role"] == "write":
                    for number in range(300):
                        re.compile("evict-" + str(number))
                else:
                    out["seen"] = [P is re.compile("module-level-6b1f")]
            """),
    channel("ipaddress_netmask_cache_by_float_prefix",
            "ip_network((addr, k + 0.0)) succeeded only when the int prefix k was in the netmask "
            "cache: an earlier evaluation's prefixes were readable, bit by bit", """
            def known(prefix):
                try:
                    ipaddress.ip_network(("0.0.0.0", prefix + 0.0))
                    return True
                except Exception:
                    return False
            def rule(data, out):
                if data["role"] == "write":
                    for prefix in data["prefixes"]:
                        ipaddress.ip_network(("0.0.0.0", prefix))
                        ipaddress.ip_network("0.0.0.0/" + str(prefix))
                else:
                    out["seen"] = [known(prefix) for prefix in range(33)]
            """),
    channel("shared_objects_identity",
            "objects handed out from a cache are the same objects in every evaluation: identity "
            "between them must not depend on what an earlier evaluation did", """
            NET = ipaddress.ip_network("198.51.100.0/24")
            def rule(data, out):
                if data["role"] == "write":
                    for prefix in data["prefixes"]:
                        ipaddress.ip_network("10.0.0.0/" + str(prefix))
                    out["x"] = str(NET.broadcast_address) + str(NET.hostmask)
                else:
                    eight = ipaddress.ip_network("10.0.0.0/8")
                    out["seen"] = [
                        eight.netmask is ipaddress.ip_network("11.0.0.0/8").netmask,
                        NET.broadcast_address is NET.broadcast_address,
                        datetime.timezone(datetime.timedelta(0)) is datetime.UTC,
                        re.compile("shared-pattern") is re.compile("shared-pattern"),
                        ipaddress.ip_address("10.0.0.1").is_private,
                    ]
            """),
    channel("memory_left_in_a_reference_cycle",
            "a rule's reference cycle outlived its evaluation until a collection: the next "
            "evaluation on that worker ran out of memory where it otherwise would not", """
            def rule(data, out):
                if data["role"] == "write":
                    big = [[number] * 100000 for number in range(30)]
                    big.append(big)
                    # Enough young objects while `big` is alive to promote it to the oldest
                    # generation, which only a full collection visits.
                    ballast = [(number,) for number in range(30000)]
                else:
                    room = [[number] * 100000 for number in range(30)]
                    out["seen"] = [len(room)]
            """, runners=("process",)),
)
