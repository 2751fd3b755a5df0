"""The engine: Daft runs the units through `Analyzer` workers, here on every core or on a Ray cluster.

    units -> DataFrame -> UnitAnalyzer (a process each, the model loaded once) -> results, as they complete

The same query runs on Daft's native runner (one machine) and on its Ray runner (`--runner ray`); why Daft
and not Ray Data is measured in docs/batch.md.
"""
from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator

os.environ.setdefault("DAFT_PROGRESS_BAR", "0")  # the run draws its own bar, in frames
os.environ.setdefault("DAFT_SHOW_QUERY_ID", "0")  # no "Daft Query ID" line on a terminal's stderr
import daft  # noqa: E402
from daft import DataType  # noqa: E402

from ..errors import IncompleteRunError  # noqa: E402
from .analyze import Analyzer, UnitResult, one_line  # noqa: E402


RAY_CPUS_PER_WORKER = 0.5
"""Ray CPUs a worker asks for: a worker uses one core, but with a whole CPU each the workers of a 2-CPU node
leave none for the tasks that feed them, and the run stalls."""


class UnitAnalyzer:
    """`Analyzer` for Daft: pickled units in, pickled `UnitResult`s out."""

    def __init__(self, settings: dict):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the driver, which stops the workers
        self.analyzer = Analyzer(**settings)

    @daft.method(return_dtype=DataType.binary())
    def analyze(self, unit: bytes) -> bytes:
        return pickle.dumps(self.analyzer(pickle.loads(unit)))


_runner: list[str] = []  # the runner this process set


def use_runner(runner: str, address: str | None) -> None:
    """Daft's native runner ("local"), or its Ray runner on the cluster at `address` (else `RAY_ADDRESS`, else a
    Ray started here). Daft lets a process set its runner once: a process keeps the first one."""
    wanted = "ray" if runner == "ray" else "native"
    if not _runner:
        try:
            if wanted == "ray":
                daft.set_runner_ray(address or os.environ.get("RAY_ADDRESS"))
            else:
                daft.set_runner_native()
        except Exception:  # set before, outside this module
            pass
        _runner.append(daft.runners.get_or_infer_runner_type())
    if _runner[0] != wanted:
        raise RuntimeError(f"this process already runs Daft on its {_runner[0]} runner; "
                           f"start a new one for --runner {runner}")


def worker_count(runner: str, workers: int | None = None) -> int:
    """`workers`, else one per core here, or per CPU of the Ray cluster (`use_runner` first)."""
    if workers:
        return workers
    if runner == "ray":
        import ray

        return int(ray.cluster_resources().get("CPU", 1))
    return os.cpu_count() or 1


def analyze(units: list, settings: dict, runner: str, workers: int) -> Iterator[UnitResult]:
    """`Analyzer(**settings)(unit)` for every unit on `workers` processes of the runner `use_runner` set, in
    the order of `units`, each result as soon as it and those before it are done."""
    if not units:
        return
    on_ray = runner == "ray"
    worker_class = daft.cls(UnitAnalyzer, max_concurrency=workers, use_process=True,
                            cpus=RAY_CPUS_PER_WORKER if on_ray else None)
    frame = daft.from_pydict({"unit": [pickle.dumps(unit) for unit in units]})
    if on_ray:
        frame = frame.into_partitions(min(len(units), 4 * workers))
    frame = frame.select(worker_class(settings).analyze(frame["unit"]).alias("result"))
    done, why = 0, "interrupted, or a worker was lost"
    try:
        with daft.context.execution_config_ctx(default_morsel_size=1):  # each unit's result as soon as it is done
            for row in frame.iter_rows():
                yield pickle.loads(row["result"])
                done += 1
    except Exception as err:  # noqa: BLE001 - the engine failed: a worker crashed or was lost
        why = one_line(err)
    if done < len(units):
        raise IncompleteRunError(f"the run stopped after {done} of {len(units)} units of work ({why}); "
                                 "run the same command again to do the rest")
