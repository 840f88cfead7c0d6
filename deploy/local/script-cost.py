#!/usr/bin/env python3
"""Redis CPU per job of the enqueue and claim functions of two or more workq libraries,
measured in alternation on one Redis (INFO commandstats, FCALL usec per job), so that a
change to the Lua can be compared with the code before it without client noise.

    # the libraries to compare, one file each (their first line names them)
    git stash; cargo run -q -p workq-producer --features cli --bin workq -- functions > /tmp/lib_base.lua
    git stash pop; cargo run -q -p workq-producer --features cli --bin workq -- functions > /tmp/lib_new.lua
    python3 -m venv /tmp/v && /tmp/v/bin/pip install -q redis
    redis-server --port 7393 --save '' --daemonize yes
    /tmp/v/bin/python deploy/local/script-cost.py 7393 20 base,new [claim size]
    /tmp/v/bin/python deploy/local/script-cost.py 7393 5 base,new fixed

Each round flushes the Redis, enqueues 40 calls of 250 no-op jobs (ids from a monotonic
ULID generator, as the Rust producer makes them), claims them 250 at a time (or the
claim size given: fewer at a time), then acks them as successes with an hour's
retention, 250 at a time, for each library in turn. It prints the medians and the ratios
to the first library.

With `fixed` instead of a claim size it measures a call's fixed part instead: FCALL usec
per call (INFO commandstats, 20,000 calls each, pipelined) of a function that only
returns, in a Redis with no other library and then beside each workq library, and of
each library's ack of nothing and claim that finds nothing due.
"""
import random
import statistics as st
import sys
import time

import redis

PORT, ROUNDS, TAGS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
FIXED = len(sys.argv) > 4 and sys.argv[4] == "fixed"
CLAIM = int(sys.argv[4]) if len(sys.argv) > 4 and not FIXED else 250
r = redis.Redis(port=PORT)
libs = {}
NOOP = "#!lua name=workq_probe_noop\nredis.register_function('workq_probe_noop', function() return 1 end)"
for tag in TAGS:
    src = open(f"/tmp/lib_{tag.removesuffix('+jobs')}.lua").read()
    libs[tag] = src.split("\n", 1)[0].split("name=")[1]
    r.function_load(src, replace=True)
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CTR = [random.getrandbits(70)]


def ulid():
    CTR[0] += 1
    n = (int(time.time() * 1000) << 80) | CTR[0]
    s = ""
    for _ in range(26):
        s = CROCK[n & 31] + s
        n >>= 5
    return s


# A record as the Rust producer writes it for kind "nop", input {i: 1}.
REC = bytes([0x95, 1, 0, 0, 0xCF]) + b"\0" * 8 + b"\xa3nop" + b"\x81\xa1i\x01"
KEYS = "workq:{default}:"
# A tag ending in "+jobs" calls its library with the jobs key declared too (numkeys 2, as
# workq's clients do since the Cluster work), e.g. new,new+jobs.
def keys_of(tag):
    return [2, KEYS, KEYS + "jobs"] if tag.endswith("+jobs") else [1, KEYS]


def usec_per_job(calls):
    s = r.info("commandstats")["cmdstat_fcall"]
    return s["usec"] / calls


def round_of(tag, calls=40, per=250):
    r.flushall()
    r.config_resetstat()
    ids = []
    for _ in range(calls):
        args = [per, ""]
        for _ in range(per):
            ids.append(ulid())
            args += [ids[-1], "0", REC]
        r.fcall(f"{libs[tag]}_enqueue", *keys_of(tag), *args)
    enq = usec_per_job(calls * per)
    r.config_resetstat()
    for _ in range(calls * per // CLAIM):
        a = [CLAIM, 30000, "w1", 60000, 100, "", 1, "nop", 0]
        r.fcall(f"{libs[tag]}_claim", *keys_of(tag), *a)
    claim = usec_per_job(calls * per)
    r.config_resetstat()
    for c in range(calls):
        a = ["w1", 3600000, 3600000, per]
        for id in ids[c * per:(c + 1) * per]:
            a += [id, 1, ""]
        r.fcall(f"{libs[tag]}_ack", *keys_of(tag), *a)
    return enq, claim, usec_per_job(calls * per)


def usec_per_call(fn, args, calls=20_000):
    r.config_resetstat()
    p = r.pipeline(transaction=False)
    for i in range(calls):
        p.fcall(fn, *args)
        if i % 500 == 499:
            p.execute()
    p.execute()
    s = r.info("commandstats")["cmdstat_fcall"]
    return s["usec"] / s["calls"]


def fixed_round():
    """usec a call: the no-op alone, then per library the no-op, ack and claim."""
    r.flushall()
    r.function_flush()
    r.function_load(NOOP)
    out = {"empty": usec_per_call("workq_probe_noop", [0])}
    for tag in TAGS:
        r.function_flush()
        r.function_load(open(f"/tmp/lib_{tag.removesuffix('+jobs')}.lua").read())
        r.function_load(NOOP)
        out[tag] = (
            usec_per_call("workq_probe_noop", [0]),
            usec_per_call(f"{libs[tag]}_ack", [*keys_of(tag), "w1", 3600000, 3600000, 0]),
            usec_per_call(f"{libs[tag]}_claim", [*keys_of(tag), CLAIM, 30000, "w1", 60000,
                                                 100, "", 1, "nop", 0]),
            r.info("memory")["used_memory_vm_functions"],
        )
    return out


if FIXED:
    rounds = [fixed_round() for _ in range(ROUNDS)]
    print(f"no-op function, no other library: {st.median(x['empty'] for x in rounds):.2f} us/call")
    for t in TAGS:
        m = [st.median(x[t][k] for x in rounds) for k in range(4)]
        print(f"{t}: no-op beside it {m[0]:.2f} us/call, ack of nothing {m[1]:.2f}, "
              f"claim of nothing {m[2]:.2f}; functions' Lua heap {m[3] / 1024:.0f} KB")
    sys.exit(0)

res = {t: ([], [], []) for t in TAGS}
for _ in range(ROUNDS):
    for tag in TAGS:
        for k, v in enumerate(round_of(tag)):
            res[tag][k].append(v)
first = TAGS[0]
for t in TAGS:
    m = [st.median(x) for x in res[t]]
    b = [st.median(x) for x in res[first]]
    print(f"{t}: enqueue {m[0]:.2f} us/job ({m[0] / b[0]:.3f}x), "
          f"claim {m[1]:.2f} us/job ({m[1] / b[1]:.3f}x), "
          f"ack kept {m[2]:.2f} us/job ({m[2] / b[2]:.3f}x)")
