"""Runtime overhead per frame: ``StreamingSession.step`` vs a bare ``invoke()`` loop.

Both run the same model file, one thread each, in interleaved rounds (so load
changes hit both), timed by this thread's CPU time (``time.thread_time``: with
one interpreter thread the kernels run on the calling thread, and CPU time is not
inflated by other processes on a shared machine) and by wall clock. The bare
loop sets preallocated inputs and invokes, nothing else. The session does
everything a deployment needs per frame: preprocessing + quantization from the
manifest, invoke, state feedback, decoding the decision and stage timing. For
scale, a third loop does by hand what streaming needs with the interpreter API
alone (set the encoded frame, invoke, read the scores, copy the states back).
Reported: median per-frame time of each, and the overhead as the median of the
per-round differences (adjacent rounds share the machine's state).

    python -m benchmarks.runtime_overhead runs/bench/int8 [--frames 3000 --rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.runtime_common import header, load_average
from edge.bundle import read_bundle
from edge.interpreter import make_interpreter
from edge.streaming import StreamingSession


def measure(bundle_path: str, frames: int, rounds: int, threads: int = 1) -> dict[str, dict[str, float]]:
    bundle = read_bundle(bundle_path)
    session = StreamingSession(bundle, num_threads=threads)
    bare = make_interpreter(bundle.model_path(0), num_threads=threads)
    inputs = [(d["index"], np.zeros(d["shape"], d["dtype"])) for d in bare.get_input_details()]
    h, w = bundle.preprocessing.size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)

    def bare_loop(n: int) -> tuple[float, float]:
        c, t = time.thread_time(), time.perf_counter()
        for _ in range(n):
            for index, value in inputs:
                bare.set_tensor(index, value)
            bare.invoke()
        return (time.thread_time() - c) / n, (time.perf_counter() - t) / n

    hand = make_interpreter(bundle.model_path(0), num_threads=threads)  # the obvious streaming loop, by hand
    in_index = {name: d["index"] for name, d in hand.get_signature_runner().get_input_details().items()}
    out_index = {name: d["index"] for name, d in hand.get_signature_runner().get_output_details().items()}
    frame_index = in_index[session.frame_spec.name]
    probs_index = out_index[session.probs_spec.name]
    feedback = [(in_index[st.input], out_index[st.output]) for st in bundle.states]
    encoded = session.encode(frame)[None]

    def hand_loop(n: int) -> tuple[float, float]:
        c, t = time.thread_time(), time.perf_counter()
        for _ in range(n):
            hand.set_tensor(frame_index, encoded)
            hand.invoke()
            int(hand.get_tensor(probs_index).argmax())
            for i, o in feedback:  # states tied to their outputs' quantization: a plain copy
                hand.set_tensor(i, hand.get_tensor(o))
        return (time.thread_time() - c) / n, (time.perf_counter() - t) / n

    def session_loop(n: int) -> tuple[float, float]:
        step = session.step
        c, t = time.thread_time(), time.perf_counter()
        for _ in range(n):
            step(frame)
        return (time.thread_time() - c) / n, (time.perf_counter() - t) / n

    bare_loop(200), session_loop(200), hand_loop(200)  # warm-up, excluded
    b, s, h = [], [], []
    for _ in range(rounds):
        b.append(bare_loop(frames))
        s.append(session_loop(frames))
        h.append(hand_loop(frames))
    out = {}
    for i, clock in enumerate(("cpu", "wall")):
        bare_us = statistics.median(x[i] for x in b) * 1e6
        sess_us = statistics.median(x[i] for x in s) * 1e6
        hand_us = statistics.median(x[i] for x in h) * 1e6
        # the overhead is the median of per-round differences: adjacent rounds see the same machine state
        over_us = statistics.median(y[i] - x[i] for x, y in zip(b, s)) * 1e6
        out[clock] = {"bare_us": bare_us, "session_us": sess_us, "overhead_us": over_us, "overhead_pct": 100 * over_us / bare_us,
                      "hand_loop_us": hand_us}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+")
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    header("runtime overhead per frame: session.step vs bare invoke loop (median of rounds)")
    print(f"{'bundle':<24} {'clock':<5} {'bare us':>9} {'session us':>11} {'overhead us':>12} {'overhead':>9} {'by-hand loop us':>16}")
    for path in args.bundles:
        for clock, r in measure(path, args.frames, args.rounds, args.threads).items():
            print(f"{path:<24} {clock:<5} {r['bare_us']:9.2f} {r['session_us']:11.2f} {r['overhead_us']:12.2f} "
                  f"{r['overhead_pct']:8.1f}% {r['hand_loop_us']:16.2f}")
    print(f"# after: {load_average()}")


if __name__ == "__main__":
    main()
