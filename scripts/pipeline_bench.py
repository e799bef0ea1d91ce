#!/usr/bin/env python3
"""Where the quick preset's wall time goes: one timed `make paper` on a fresh clone, then its breakdown.

Usage (on an idle machine; about as long as `make paper`):

    .venv/bin/python scripts/pipeline_bench.py [--cores 2] [--workdir /tmp/ttdm-bench] [--no-worker] [--rev REV]
                                               [--part trust]

It clones the repository's HEAD into ``--workdir`` (reusing this checkout's .venv), runs ``make paper`` there while
sampling the Snakemake process's own CPU time, then a second ``snakemake -n`` (nothing to do) three times and a
misconfigured ``snakemake -n`` three times, and reads the clone's ``benchmarks/`` (every job's wall time), job logs
(every ``ttdm`` command's last line: start-up = process start and imports) and Snakemake's log (when each job
started and ended).  It writes ``results/bench/pipeline.csv`` here: measure, value, unit, target, met, note.

``--part trust`` measures the quick preset as the trust issue (9) left it, on today's code: the clone's config.yaml
without what the later issues added (the trilemma, Performer and DSNO studies, their runs, samplers and classifier;
see ``trust_part``).  The issue's budget is the Method issue's wall time plus 4 minutes; measure that commit
(``--rev``) on the same day, as the machine's speed drifts between sessions.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
STARTUP = re.compile(r"^ttdm (\S+): start-up ([\d.]+) s \(imports ([\d.]+) s\), total ([\d.]+) s$", re.M)


def _snakemake_cpu(proc: psutil.Process) -> float | None:
    """CPU seconds so far of the Snakemake process among ``proc``'s descendants (None if not found)."""
    for child in proc.children(recursive=True):
        try:
            if "bin/snakemake" in " ".join(child.cmdline()[:2]):
                times = child.cpu_times()
                return times.user + times.system
        except psutil.Error:
            continue
    return None


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, int]:
    """(wall s, CPU s of the Snakemake process itself, sampled every 0.5 s, exit status) of ``cmd``."""
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = 0.0
    while proc.poll() is None:
        cpu = max(cpu, _snakemake_cpu(proc) or 0.0)
        time.sleep(0.5)
    return time.perf_counter() - started, cpu, proc.returncode


def job_times(workdir: Path) -> dict[str, list[float]]:
    """Wall seconds of every benchmarked job, by rule (benchmarks/RULE/...tsv)."""
    out: dict[str, list[float]] = {}
    for path in glob.glob(str(workdir / "benchmarks" / "**" / "*.tsv"), recursive=True):
        rule = Path(path).relative_to(workdir / "benchmarks").parts[0]
        with open(path) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        out.setdefault(rule, []).append(float(rows[-1]["s"]))
    return out


def startups(workdir: Path) -> dict[str, list[tuple[float, float, float]]]:
    """(start-up, imports, total) seconds of every ttdm command in the job logs, by command."""
    out: dict[str, list[tuple[float, float, float]]] = {}
    for path in glob.glob(str(workdir / "logs" / "**" / "*.log"), recursive=True):
        for cmd, start, imports, total in STARTUP.findall(Path(path).read_text(errors="replace")):
            out.setdefault(cmd, []).append((float(start), float(imports), float(total)))
    return out


def timeline(workdir: Path) -> list[tuple[float, float, str]]:
    """(start, end, rule) of every job, in seconds since the first, from Snakemake's newest log (1 s resolution)."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    text = logs[-1].read_text()
    stamp, starts, jobs = None, {}, []
    rule = None
    for line in text.splitlines():
        m = re.match(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$", line)
        if m:
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
            continue
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"^\s+jobid: (\d+)$", line)
        if m and rule:
            starts[m.group(1)] = (stamp, rule)
            rule = None
            continue
        m = re.match(r"^Finished jobid: (\d+)", line)
        if m and m.group(1) in starts:
            begin, name = starts.pop(m.group(1))
            jobs.append((begin, stamp, name))
    t0 = min(b for b, _, _ in jobs)
    return [(b - t0, e - t0, r) for b, e, r in jobs]


def idle_tail(jobs: list[tuple[float, float, str]], cores: int) -> tuple[float, str]:
    """Seconds at the end during which fewer than ``cores`` jobs ran, and the rules running then."""
    end = max(e for _, e, _ in jobs)
    t = end
    while t > 0 and sum(1 for b, e, _ in jobs if b <= t - 0.5 < e) < cores:
        t -= 1.0
    tail = sorted({r for b, e, r in jobs if e > t and r != "all"})
    return end - t, ", ".join(tail)


def snakemake_dry(workdir: Path, env: dict, config: str | None = None) -> float:
    cmd = [str(ROOT / ".venv" / "bin" / "snakemake"), "-n"] + (["--configfile", config] if config else [])
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=workdir, env=env, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


LATER_METHODS = {"vdm", "ddgan", "autoencoder", "latent_ddpm", "dsno"}  # the trilemma and DSNO issues' methods
LATER_STUDIES = ("trilemma", "performer", "dsno", "classifier")
LATER_SAMPLERS = ("dpmpp", "gan", "dsno")
TARGETS_S = {"all": 720, "trust": 552 + 240}  # the Method issue's 12 min; its measured 552 s + the trust issue's 4 min


def trust_part(config: dict) -> dict:
    """The quick preset as the trust issue left it: ``config`` without the trilemma, Performer and DSNO additions.

    Dropped: grid blocks of the later methods (VDM, DDGAN, autoencoder, latent DDPM, DSNO) and the FAVOR+ sweep, the
    studies and the digits classifier, the DPM-Solver++, GAN-chain and DSNO samplers, and the models only they use.
    The U-Net keeps the trust issue's two seeds and no likelihood job (the third seed and the ELBO came with the
    Performer and trilemma issues).
    """
    out = {key: value for key, value in config.items() if key not in LATER_STUDIES}
    grid = []
    for block in config["grid"]:
        if block.get("training", {}).get("method") in LATER_METHODS or "attention" in block.get("sweep", {}):
            continue
        block = dict(block)
        if block["models"] == ["unet"]:
            block.update(seeds=[0, 1], likelihood=False)
        grid.append(block)
    out["grid"] = grid
    used = {model for block in grid for model in block["models"]}
    out["models"] = {name: spec for name, spec in config["models"].items() if name in used}
    samplers = config["sampling"]["samplers"]
    out["sampling"] = {**config["sampling"],
                       "samplers": {name: spec for name, spec in samplers.items() if name not in LATER_SAMPLERS}}
    return out


def _commit(work: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ttdm-pipeline-bench"))
    parser.add_argument("--no-worker", action="store_true", help="run every job in its own process")
    parser.add_argument("--rev", default="HEAD", help="the commit to measure (default HEAD)")
    parser.add_argument("--part", choices=sorted(TARGETS_S), default="all",
                        help="all: the quick preset; trust: without the later issues' additions (trust_part)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "pipeline.csv")
    args = parser.parse_args()

    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    subprocess.run(["git", "checkout", "-q", args.rev], cwd=work, check=True)
    (work / ".venv").symlink_to(ROOT / ".venv")
    # the shared .venv has ttdm installed in editable mode from this checkout: put the clone's own source first
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(work / "src")}
    launcher = work / "src" / "ttdm" / "launcher.py"
    if not launcher.exists():  # an older --rev, whose console script was ttdm.cli:main: the shared venv's calls this
        launcher.write_text("from ttdm.cli import main  # noqa: F401  (written by pipeline_bench for an older rev)\n")
    if args.no_worker:
        env["TTDM_NO_WORKER"] = "1"
    (work / ".venv" / ".installed").touch(exist_ok=True)
    if args.part == "trust":
        config_path = work / "config.yaml"
        config_path.write_text(yaml.safe_dump(trust_part(yaml.safe_load(config_path.read_text())), sort_keys=False))
    print(f"make paper in {work} ...", flush=True)
    wall, snake_cpu, code = timed(["make", "paper", f"CORES={args.cores}"], work, env)
    if code != 0:
        sys.exit(f"make paper failed (exit {code}); see {work}/.snakemake/log")
    second = snakemake_dry(work, env)
    bad = work / "bad.yaml"
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["models"]["mlp"]["depth"] = -5
    bad.write_text(yaml.safe_dump(config))
    refused = snakemake_dry(work, env, str(bad))

    jobs = job_times(work)
    starts = startups(work)
    summed = sum(sum(v) for v in jobs.values())
    n_jobs = sum(len(v) for v in jobs.values())
    overhead = sum(s for v in starts.values() for s, _, _ in v)
    tail_s, tail_rules = idle_tail(timeline(work), args.cores)
    target = TARGETS_S[args.part]
    rows = [
        ("make_paper_wall", wall, "s", target, wall <= target,
         f"{args.cores} cores, worker {'off' if args.no_worker else 'on'}, commit {_commit(work)}, part {args.part}"),
        ("second_dry_run", second, "s", 5, second <= 5, "snakemake -n with nothing to do, median of 3"),
        ("misconfig_refusal", refused, "s", 5, refused <= 5, "snakemake -n with models.mlp.depth: -5, median of 3"),
        ("job_overhead_share", overhead / summed, "fraction", 0.15, overhead / summed <= 0.15,
         f"process start + imports {overhead:.1f} s over {summed:.1f} s of {n_jobs} benchmarked jobs"),
        ("snakemake_cpu", snake_cpu, "s", "", "", "CPU time of the Snakemake process itself"),
        ("idle_core_tail", tail_s, "s", "", "", f"end of the run with fewer than {args.cores} jobs: {tail_rules}"),
    ]
    for rule, times in sorted(jobs.items()):
        note = f"{len(times)} jobs, mean {statistics.mean(times):.2f} s"
        rows.append((f"jobs_{rule}", sum(times), "s", "", "", note))
    for cmd, values in sorted(starts.items()):
        rows.append((f"startup_{cmd}", sum(s for s, _, _ in values), "s", "", "",
                     f"{len(values)} commands, mean start-up {statistics.mean(s for s, _, _ in values):.3f} s, "
                     f"imports {statistics.mean(i for _, i, _ in values):.3f} s"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["measure", "value", "unit", "target", "met", "note"])
        for name, value, unit, target, met, note in rows:
            writer.writerow([name, f"{value:.4g}", unit, target, met, note])
    print(args.out.read_text())


if __name__ == "__main__":
    main()
