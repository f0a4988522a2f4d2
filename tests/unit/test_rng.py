import subprocess
import sys

from cluster_sim.rng import Streams, as_generator


def test_streams_are_reproducible_and_independent():
    a, b = Streams(3), Streams(3)
    x = a["arrivals"].random(5)
    # creating another stream first must not shift "arrivals"
    b["failures"].random(100)
    assert (b["arrivals"].random(5) == x).all()
    assert not (Streams(3)["failures"].random(5) == x).all()
    assert not (Streams(4)["arrivals"].random(5) == x).all()


def test_as_generator_accepts_seed_generator_none():
    g = as_generator(5)
    assert as_generator(g) is g
    assert as_generator(None).random() == as_generator(0).random()


def test_streams_do_not_depend_on_hash_seed():
    code = "from cluster_sim.rng import Streams; print(Streams(11)['x'].integers(0, 10**9))"
    outs = {
        subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": s}, capture_output=True,
                       text=True, check=True).stdout
        for s in ("0", "1", "12345")
    }
    assert len(outs) == 1
