#!/usr/bin/python3
"""Takes an alloc, keeps it alive for SECONDS, prints its inspect (JSON), frees it.

    example_hold.py [--api EP] [--min RES [--width N] | --want RES] [--interval DURATION] SECONDS

With --min it calls allocate; otherwise it accepts the first offer with --want
(default cpu=1). Exit 0 on success, 1 (one line on stderr) on a pool error or a
lost lease."""

import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import poolbus  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=poolbus.DEFAULT_API)
    parser.add_argument("--min", help="allocate with this minimum, e.g. cpu=1,mem=1GiB")
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--want", default="cpu=1", help="accept the first offer with this (default cpu=1)")
    parser.add_argument("--interval", default="5m", help="keepalive interval to ask for (default 5m)")
    parser.add_argument("--owner", default="example_hold")
    parser.add_argument("seconds", type=float)
    args = parser.parse_args(argv)

    try:
        interval_ms = poolbus.parse_duration_ms(args.interval)
        with poolbus.Client(args.api, timeout_ms=10_000) as client:
            if args.min:
                alloc = client.allocate(poolbus.parse_resources(args.min), args.width, owner=args.owner)
            else:
                offers = client.offers()
                if not offers:
                    raise poolbus.PoolError("unavailable", "no offers")
                alloc = client.accept(offers[0]["id"], poolbus.parse_resources(args.want), owner=args.owner)
            lost = threading.Event()
            keepalive = poolbus.Keepalive(client, alloc["id"], interval_ms, on_lost=lambda err: lost.set())
            try:
                lost.wait(args.seconds)  # returns early only if the lease is lost
            finally:
                keepalive.stop()
            if keepalive.error is not None:
                raise keepalive.error
            print(json.dumps(client.inspect(alloc["id"]), indent=2, sort_keys=True))
            client.free(alloc["id"])
    except (poolbus.PoolError, ValueError) as e:
        print("example_hold: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
