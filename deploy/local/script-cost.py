#!/usr/bin/env python3
"""Redis CPU per job of the enqueue and claim functions of two or more workq libraries,
measured in alternation on one Redis (INFO commandstats, FCALL usec per job), so that a
change to the Lua can be compared with the code before it without client noise.

    # the libraries to compare, one file each (their first line names them)
    git stash; cargo run -q -p workq-producer --features cli --bin workq -- functions > /tmp/lib_base.lua
    git stash pop; cargo run -q -p workq-producer --features cli --bin workq -- functions > /tmp/lib_new.lua
    python3 -m venv /tmp/v && /tmp/v/bin/pip install -q redis
    redis-server --port 7393 --save '' --daemonize yes
    /tmp/v/bin/python deploy/local/script-cost.py 7393 20 base,new

Each round flushes the Redis, enqueues 40 calls of 250 no-op jobs (ids from a monotonic
ULID generator, as the Rust producer makes them) and then claims them 250 at a time, for
each library in turn. It prints the medians and the ratios to the first library.
"""
import random
import statistics as st
import sys
import time

import redis

PORT, ROUNDS, TAGS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
r = redis.Redis(port=PORT)
libs = {}
for tag in TAGS:
    src = open(f"/tmp/lib_{tag}.lua").read()
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


def usec_per_job(calls):
    s = r.info("commandstats")["cmdstat_fcall"]
    return s["usec"] / calls


def round_of(tag, calls=40, per=250):
    r.flushall()
    r.config_resetstat()
    for _ in range(calls):
        args = [per, ""]
        for _ in range(per):
            args += [ulid(), "0", REC]
        r.fcall(f"{libs[tag]}_enqueue", 1, KEYS, *args)
    enq = usec_per_job(calls * per)
    r.config_resetstat()
    for _ in range(calls):
        a = [per, 30000, "w1", 60000, 100, "", 1, "nop", 0]
        r.fcall(f"{libs[tag]}_claim", 1, KEYS, *a)
    return enq, usec_per_job(calls * per)


res = {t: ([], []) for t in TAGS}
for _ in range(ROUNDS):
    for tag in TAGS:
        e, c = round_of(tag)
        res[tag][0].append(e)
        res[tag][1].append(c)
first = TAGS[0]
for t in TAGS:
    e, c = st.median(res[t][0]), st.median(res[t][1])
    print(f"{t}: enqueue {e:.2f} us/job ({e / st.median(res[first][0]):.3f}x), "
          f"claim {c:.2f} us/job ({c / st.median(res[first][1]):.3f}x)")
