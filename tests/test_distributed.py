"""Training on two processes (torchrun, gloo, 127.0.0.1 only) equals one process with the same
global batch and seed: the routed gradients of one step, and the weights after a few steps across
an epoch boundary with --augment flip and --ema; a 2-rank checkpoint resumes on 1 rank; a rank
killed with SIGKILL ends the job within seconds and --resume continues; a non-finite loss stops
every rank at the same step."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from conftest import free_port
from test_train import data_dir  # noqa: F401 (a fixture)
from vaegan.distributed import World, global_batchnorm
from vaegan.model import PRESETS, VAEGAN
from vaegan.train import augment, build, main, parse_args, routed_grads

ROOT = Path(__file__).resolve().parents[1]
# float rounding of the ranks' partial sums (about 1e-7 relative) goes through Adam, which
# divides each gradient by its running RMS; observed at most 3e-7 after 12 and after 20 steps
TOLERANCE = 1e-5
TRAIN = ["--preset", "tiny", "--batch-size", "32", "--limit", "256", "--augment", "flip",
         "--ema", "0.9", "--ckpt-every", "3", "--log-every", "3", "--threads", "1"]


def env() -> dict:
    """Loopback only, one thread a process."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
            "MASTER_ADDR": "127.0.0.1", "PYTHONPATH": str(ROOT)}


def torchrun(out: Path, data: Path, *extra: str, n: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
            "-m", "vaegan.train", *TRAIN, "--data-dir", str(data), "--out", str(out), *extra]


def one_process(out: Path, data: Path, *extra: str) -> int:
    return main([*TRAIN, "--data-dir", str(data), "--out", str(out), *extra])


def assert_close(a: dict, b: dict, tol: float = TOLERANCE) -> float:
    """Same keys, every tensor within tol -> the largest difference."""
    assert a.keys() == b.keys()
    worst = 0.0
    for k in a:
        d = (a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0
        assert d <= tol, (k, d)
        worst = max(worst, d)
    return worst


def weights(folder: Path) -> dict:
    return load_file(folder / "model.safetensors")


def leaves(obj, path: str = "") -> list[tuple[str, object]]:
    """(path, value) of every tensor and number in nested dicts and lists (a checkpoint)."""
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in leaves(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [leaf for i, v in enumerate(obj) for leaf in leaves(v, f"{path}.{i}")]
    return [(path, obj)]


# ---- one step, in process: the routed gradients of 2 ranks are those of one ----------------
def _rank(rank: int, port: int, out: str, data: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        world = World(rank=rank, size=2, backend="gloo")
        torch.manual_seed(0)
        model = global_batchnorm(VAEGAN(PRESETS["tiny"]))
        x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(2)
        grads, logged = routed_grads(model, x[world.rows(8)[1]], gen, world)
        # decisions such as --time-limit's are rank 0's
        agreed = [world.agree(rank == 0), world.agree(rank == 1)]
        odd = None
        try:  # a global batch that 2 ranks cannot share: every rank stops with a sentence
            build(parse_args(["--preset", "tiny", "--data-dir", data, "--batch-size", "33",
                              "--out", f"{out}/odd"]), world=world)
        except SystemExit as e:
            odd = e.code
        torch.save({"grads": grads, "logged": list(logged.__dict__.values()), "agreed": agreed,
                    "odd": odd, "state": model.state_dict(), "gen": gen.get_state()},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_give_the_routed_gradients_of_one_process(tmp_path, data_dir):  # noqa: F811
    """Each rank holds 8 of 16 images; BatchNorm statistics (encoder, decoder fc and convs) are
    the global batch's, the noise is the global draw's rows, the gradients are averaged."""
    torch.multiprocessing.spawn(_rank, args=(free_port(), str(tmp_path), str(data_dir)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"])
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    grads, logged = routed_grads(model, x, gen)
    for name in ("encoder", "decoder", "discriminator"):  # the same on both ranks, exactly
        assert all(torch.equal(a, b) for a, b in zip(r0["grads"][name], r1["grads"][name], strict=True))
        for g, want in zip(r0["grads"][name], grads[name], strict=True):
            assert torch.allclose(g, want, rtol=1e-4, atol=1e-6), name
    assert r0["logged"] == r1["logged"] == pytest.approx(list(logged.__dict__.values()), rel=1e-5)
    # the running statistics of the global batch, spectral norm's vectors, the noise generator
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    assert_close(r0["state"], model.state_dict(), tol=1e-6)
    assert torch.equal(r0["gen"], gen.get_state())
    assert r0["agreed"] == r1["agreed"] == [True, False]
    assert r0["odd"] == r1["odd"] == ("error: --batch-size (the global batch) is 33, which 2 "
                                      "processes cannot share evenly; use a multiple of 2, or "
                                      "another number of processes")


def test_flips_of_the_ranks_rows_are_those_of_the_global_batch():
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    seed = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    shares = [augment(x[World(rank=r, size=3).rows(4)[1]], "flip", seed(), World(rank=r, size=3))
              for r in range(3)]
    assert torch.equal(torch.cat(shares), augment(x, "flip", seed()))


# ---- torchrun: a run of 12 steps on 2 processes and on 1 ----------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):  # noqa: F811
    """Folders of the same run (12 steps of 32: an epoch of 8 and half another) on 2 processes
    (torchrun, every rank saving its state) and on 1."""
    base = tmp_path_factory.mktemp("ddp")
    two, one = base / "two", base / "one"
    t = time.monotonic()
    res = subprocess.run(torchrun(two, data_dir, "--epochs", "5", "--max-steps", "12",
                                  "--save-rank-states"),
                         cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"torchrun, 2 processes: {time.monotonic() - t:.1f} s")
    assert one_process(one, data_dir, "--epochs", "5", "--max-steps", "12") == 0
    return two, one


def test_two_processes_train_like_one(runs):
    two, one = runs
    # the shipped model (the decoder's moving average) and the live weights
    worst = max(assert_close(weights(two / "model"), weights(one / "model")),
                assert_close(weights(two / "model_live"), weights(one / "model_live")))
    print(f"largest weight difference after 12 steps: {worst:.2g}")
    # the logged losses are the means over the global batch
    rows = [[json.loads(line) for line in (f / "metrics.jsonl").read_text().splitlines()]
            for f in (two, one)]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == [3, 6, 8, 9, 12]
    for a, b in zip(*rows):
        for k in ("prior", "llike", "gan_gen", "gan_dis"):
            assert a[k] == pytest.approx(b[k], rel=1e-5), (a, b)
    # every rank holds the same numbers: weights, buffers, Adam, the EMA, the noise generator
    r0, r1 = (torch.load(two / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for (k0, v0), (k1, v1) in zip(leaves(r0), leaves(r1), strict=True):
        assert k0 == k1 and (torch.equal(v0, v1) if torch.is_tensor(v0) else v0 == v1), k0
    # only rank 0 wrote the run's files; training.json records the world
    assert (two / "samples_e001.png").exists() and (two / "checkpoint.pt").exists()
    info = json.loads((two / "model" / "training.json").read_text())
    assert (info["world_size"], info["backend"], info["batch_size"], info["batch_per_process"]) \
        == (2, "gloo", 32, 16)
    assert info["command"].startswith("torchrun --nproc-per-node 2 -m vaegan.train ")
    alone = json.loads((one / "model" / "training.json").read_text())
    assert (alone["world_size"], alone["backend"], alone["batch_per_process"]) == (1, None, 32)


def test_a_two_rank_checkpoint_resumes_on_one(runs, tmp_path, data_dir, capsys):  # noqa: F811
    """Stopped mid-epoch (step 12: epoch 2, batch 4) on 2 processes, continued on 1 to step 20:
    the weights of the run that ran on 1 process throughout."""
    two, one = (shutil.copytree(f, tmp_path / f.name) for f in runs)
    assert one_process(two, data_dir, "--epochs", "5", "--max-steps", "20", "--resume") == 0
    assert ("at step 12 (epoch 1, batch 4); written by 2 process(es), continued by 1"
            in capsys.readouterr().out)
    assert one_process(one, data_dir, "--epochs", "5", "--max-steps", "20", "--resume") == 0
    worst = assert_close(weights(two / "model"), weights(one / "model"))
    print(f"largest weight difference after 20 steps: {worst:.2g}")
    assert torch.load(two / "checkpoint.pt", weights_only=True)["world_size"] == 1


# ---- a rank killed mid-run -------------------------------------------------------------------
def children(pid: int) -> list[int]:
    return [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
            for c in (t / "children").read_text().split()]


def rank_of(pid: int) -> int | None:
    for var in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if var.startswith(b"RANK="):
            return int(var[5:])
    return None


def test_a_killed_rank_ends_the_job_and_resume_continues(tmp_path, data_dir):  # noqa: F811
    ckpt, log = tmp_path / "checkpoint.pt", tmp_path / "torchrun.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(torchrun(tmp_path, data_dir, "--epochs", "200"), cwd=ROOT,
                                env=env(), stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 6):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after step 6 in 300 s"
            time.sleep(0.05)
        workers = {rank_of(p): p for p in children(proc.pid)}
        assert set(workers) == {0, 1}
        os.kill(workers[1], signal.SIGKILL)
        t = time.monotonic()
        proc.wait(timeout=60)  # no hang: torchrun ends the job
        ended = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "Signal 9 (SIGKILL) received" in log.read_text()
    print(f"torchrun ended {ended:.1f} s after SIGKILL")
    assert ended < 30
    at = torch.load(ckpt, weights_only=True)["step"]
    assert at >= 6 and not list(tmp_path.glob(".ckpt-*"))
    res = subprocess.run(torchrun(tmp_path, data_dir, "--resume", "--max-steps", str(at + 5)),
                         cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed from {ckpt} at step {at} " in res.stdout
    assert f"done: {at + 5} steps" in res.stdout
    assert torch.load(ckpt, weights_only=True)["step"] == at + 5
    # where a run on 1 process throughout ends
    assert one_process(tmp_path / "one", data_dir, "--epochs", "200", "--max-steps", str(at + 5)) == 0
    worst = assert_close(weights(tmp_path / "model"), weights(tmp_path / "one" / "model"))
    print(f"largest weight difference after {at + 5} steps: {worst:.2g}")


def test_a_non_finite_loss_stops_every_rank_at_the_same_step(tmp_path, data_dir):  # noqa: F811
    res = subprocess.run(torchrun(tmp_path, data_dir, "--max-steps", "12", "--nan-at-step", "7",
                                  "--save-rank-states"),
                         cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "exitcode  : 2" in res.stderr
    # one sentence (rank 0's), the last good checkpoint kept, no rank went on
    assert res.stderr.count("non-finite loss") == 1 and "at step 7 (epoch 1)" in res.stderr
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 6
    assert not list(tmp_path.glob("rank*.pt")) and not (tmp_path / "model").exists()
