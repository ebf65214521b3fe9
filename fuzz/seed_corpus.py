#!/usr/bin/env python3
"""Writes every wire vector into the fuzz corpora (python3 standard library only).

    python3 fuzz/seed_corpus.py [--vectors DIR] [--max-bytes N]

fuzz/corpus/frame_decode/<file>--<id>    the vector's whole frame
fuzz/corpus/message_decode/<file>--<id>  one byte naming the command (its index in COMMANDS,
                                 the same order as COMMANDS in fuzz/src/lib.rs), then
                                 the payload
fuzz/corpus/peer/<file>--<id>            a peer_core::fuzzing script: handshake with the
                                 well-behaved remote, then the vector's payload framed
                                 on the peer's network and fed in raw chunks, then
                                 clock jumps (plus a few hand-written scripts)

Vectors are read from --vectors, else $PEERWIRE_VECTORS, else shared/vectors beside the
workspace. Frames larger than --max-bytes (default 262144) are left out: libFuzzer works
best on small inputs, and the big ones are replayed by wire-codec's fuzz_regressions test.
"""

import argparse
import glob
import hashlib
import struct
import json
import os
import re
import sys

# Must match `COMMANDS` in fuzz/src/lib.rs (wire-codec's fuzz_regressions test checks it).
COMMANDS = [
    "version", "verack", "ping", "pong", "getaddr", "addr", "addrv2", "sendaddrv2",
    "inv", "getdata", "notfound", "getblocks", "getheaders", "headers", "block", "tx",
    "mempool", "reject", "sendheaders", "feefilter", "filterload", "filteradd",
    "filterclear", "merkleblock", "getcfilters", "cfilter", "getcfheaders", "cfheaders",
    "getcfcheckpt", "cfcheckpt", "wtxidrelay", "sendcmpct", "cmpctblock", "getblocktxn",
    "blocktxn", "alert", "sendtxrcncl",
]

HERE = os.path.dirname(os.path.abspath(__file__))

# peer_core::fuzzing script opcodes (the op byte is taken modulo 12).
OP_TO_PEER, OP_FROM_PEER, OP_RAW, OP_MENU_FRAME, OP_STEP, OP_NEXT_DEADLINE = 0, 1, 2, 3, 4, 5
OP_QUEUE, OP_REMOTE_QUEUE, OP_INVENTORY, OP_PROCESSING, OP_DISCONNECT, OP_HEIGHT = 6, 7, 8, 9, 10, 11
# Index into peer_core::fuzzing's VERSIONS of 70016 and 70011; flag bits.
V70016, V70011, V70001 = 9, 6, 4
NET_MAINNET, NET_REGTEST, NET_LBRY = 0, 1, 2
INBOUND, BLOOM, NO_STALL, REJECT_VERSION, REPORT_IO, LOOPBACK = 4, 8, 16, 32, 64, 128
PEER_PAYLOAD_MAX = 3000


def make_frame(magic, command, payload):
    """A v1 frame: magic, NUL-padded command, length, checksum, payload."""
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return magic + command.encode().ljust(12, b"\0") + struct.pack("<I", len(payload)) + check + payload


def handshake(rounds=3):
    """Transfers everything both ways, byte split 255, a few times."""
    ops = b""
    for _ in range(rounds):
        ops += bytes([OP_FROM_PEER, 0, 0, 255, OP_TO_PEER, 0, 0, 255])
    return ops


def raw(data):
    """Feeds `data` to the peer under test in chunks of at most 255 bytes."""
    ops = b""
    for i in range(0, len(data), 255):
        chunk = data[i:i + 255]
        ops += bytes([OP_RAW, len(chunk)]) + chunk
    return ops


def settle():
    """Lets both peers answer, then runs the clocks to the next deadlines."""
    return (bytes([OP_FROM_PEER, 0, 0, 255, OP_TO_PEER, 0, 0, 255])
            + bytes([OP_NEXT_DEADLINE]) * 3 + bytes([OP_STEP, 0xff, 0xff]))


def script(flags, ours=V70016, theirs=V70016, ops=b""):
    # flags, our version, output cap (1000 + 255*64), pre-handshake cap (200 + 255*16), theirs
    return bytes([flags, ours, 255, 255, theirs]) + ops


# Hand-written scripts reaching the rules the vectors do not: timers, notifications,
# inventory trickling, bloom rules, self-made misbehaviour.
HAND_WRITTEN = {
    "handshake-then-idle": script(0, ops=handshake() + bytes([OP_NEXT_DEADLINE]) * 12),
    "inbound-handshake-ping-timers": script(INBOUND | REPORT_IO, ops=handshake()
        + bytes([OP_QUEUE, 0, OP_QUEUE, 3, OP_QUEUE, 4]) + handshake(1)
        + bytes([OP_STEP, 0x30, 0x75]) * 4 + bytes([OP_NEXT_DEADLINE]) * 6),
    "queue-before-handshake": script(0, ops=bytes([OP_QUEUE, 0, OP_QUEUE, 9, OP_INVENTORY, 4,
        OP_INVENTORY, 7]) + handshake() + bytes([OP_NEXT_DEADLINE]) * 4 + handshake(1)),
    "stall-getdata": script(0, ops=handshake() + bytes([OP_QUEUE, 3, OP_FROM_PEER, 0, 0, 255,
        OP_PROCESSING, 5]) + bytes([OP_NEXT_DEADLINE]) * 8),
    "bloom-70011": script(BLOOM, V70011, V70011, handshake() + bytes([OP_REMOTE_QUEUE, 10])
        + handshake(1) + bytes([OP_NEXT_DEADLINE]) * 2),
    "filterload-without-bloom": script(0, ops=handshake() + bytes([OP_REMOTE_QUEUE, 10])
        + handshake(1)),
    "filterload-without-bloom-70001": script(0, V70001, V70016, handshake()
        + bytes([OP_REMOTE_QUEUE, 10]) + handshake(1)),
    "reject-version": script(INBOUND | REJECT_VERSION, ops=bytes([OP_QUEUE, 0]) + handshake()),
    "corrupted-frames-loopback-regtest": script(NET_REGTEST | LOOPBACK, ops=handshake()
        + bytes([OP_MENU_FRAME, 0, 20, 1, OP_MENU_FRAME, 7, 30, 0x80, OP_MENU_FRAME, 12, 2, 1])
        + handshake(1)),
    "message-before-version": script(INBOUND, ops=bytes([OP_MENU_FRAME, 0, 200, 0]) + handshake(1)),
    "verack-first": script(INBOUND, ops=bytes([OP_MENU_FRAME, 11, 200, 0]) + handshake(1)),
    "disconnect-with-queue": script(0, ops=handshake() + bytes([OP_QUEUE, 1, OP_QUEUE, 2,
        OP_DISCONNECT, 0, OP_QUEUE, 5])),
    "output-cap": script(0, ops=handshake()
        + bytes([OP_QUEUE, 12]) * 40 + bytes([OP_NEXT_DEADLINE])),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vectors", default=os.environ.get("PEERWIRE_VECTORS")
                   or os.path.join(HERE, "..", "..", "shared", "vectors"))
    p.add_argument("--max-bytes", type=int, default=262144)
    args = p.parse_args()

    files = sorted(glob.glob(os.path.join(args.vectors, "*.json")))
    if not files:
        sys.exit(f"no *.json vector files in {args.vectors}")
    out = {t: os.path.join(HERE, "corpus", t) for t in ("frame_decode", "message_decode", "peer")}
    for d in out.values():
        os.makedirs(d, exist_ok=True)

    written = {t: 0 for t in out}
    skipped = 0
    # The peer fuzzer runs on mainnet, regtest or LBRY mainnet: other networks' frames
    # are re-framed with one of those magics.
    magics = {}
    for path in files:
        with open(path) as f:
            for v in json.load(f).get("vectors", []):
                magics.setdefault(v["network"], bytes.fromhex(v["magic_hex"]))
    for name, data in HAND_WRITTEN.items():
        with open(os.path.join(out["peer"], "hand--" + name), "wb") as f:
            f.write(data)
        written["peer"] += 1
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        for v in doc.get("vectors", []):
            frame = bytes.fromhex(v["frame_hex"])
            if len(frame) > args.max_bytes:
                skipped += 1
                continue
            # Ids repeat across files (pbl-, rbtc, core- mutate the same messages).
            stem = os.path.splitext(os.path.basename(path))[0]
            name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{stem}--{v['id']}")
            with open(os.path.join(out["frame_decode"], name), "wb") as f:
                f.write(frame)
            written["frame_decode"] += 1
            if v["command"] in COMMANDS:
                payload = bytes.fromhex(v["payload_hex"]) if "payload_hex" in v else frame[24:]
                with open(os.path.join(out["message_decode"], name), "wb") as f:
                    f.write(bytes([COMMANDS.index(v["command"])]) + payload)
                written["message_decode"] += 1
            payload = frame[24:]
            if len(payload) <= PEER_PAYLOAD_MAX and "expect_error" not in v:
                lbry = v["network"].startswith("lbry")
                net, magic = (NET_LBRY, magics.get("lbry-mainnet")) if lbry \
                    else (NET_MAINNET, magics.get("mainnet"))
                if magic is not None:
                    body = raw(make_frame(magic, v["command"], payload))
                    data = script(net, ops=handshake() + body + settle())
                    with open(os.path.join(out["peer"], name), "wb") as f:
                        f.write(data)
                    written["peer"] += 1
            elif "expect_error" in v and len(frame) <= PEER_PAYLOAD_MAX:
                # Negative frames as they are, after the handshake (the magic may be
                # another network's: that is one of the errors).
                data = script(NET_MAINNET | INBOUND, ops=handshake() + raw(frame) + settle())
                with open(os.path.join(out["peer"], name), "wb") as f:
                    f.write(data)
                written["peer"] += 1
    for t, n in written.items():
        print(f"{t}: {n} seeds in {out[t]}")
    print(f"left out {skipped} frames above {args.max_bytes} bytes")


if __name__ == "__main__":
    main()
