"""Downloading and materializing a dataset bag, next to copying the same files with shutil.copytree.

Set-up (not timed): a fresh embedded catalog in a temporary folder with an ``Image`` asset table,
N small files (default 1,000 of 1 KB) stored in its object store, one ``Image`` row each, and a
dataset with the N images as members. Then, in the same process:

- copytree: ``shutil.copytree`` of the N source files (the floor for moving the bytes);
- cold:     ``download_dataset_bag`` of the version, materialized (rows read at the version's
            snapshot, CSVs and schema written, every file copied from the object store with its
            MD5 checked as it is written, manifests written from the known checksums);
- cached:   the same call again (a cache hit: nothing is read or written).

Each is repeated (fresh cache each time for cold) and the median printed. The goal of issue 13
(at most 2x copytree) is reported through ``_goals.report``.

    python benchmarks/bench_datasets.py            # N = 1000, median of 3
    python benchmarks/bench_datasets.py 5000 --repeat 5
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _goals import report


def main(argv: list[str]) -> int:
    from pytest_deriva import DatasetSpec, DerivaML

    repeat = 3
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    n = int(argv[0]) if argv else 1000

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "source"
        source.mkdir()
        for i in range(n):
            (source / f"img{i:05d}.bin").write_bytes(os.urandom(1024))

        ml = DerivaML(root / ".deriva")
        ml.create_asset("Image")
        ml.add_dataset_element_type("Image")
        rows = []
        for f in sorted(source.iterdir()):
            obj = ml.catalog.objects.put(f, "Image", f.name)
            rows.append({"URL": obj.url, "Filename": f.name, "Length": obj.length, "MD5": obj.md5})
        rids = [r["RID"] for r in ml.insert_records("Image", rows)]
        ds = ml.create_dataset("Complete", description=f"{n} images")
        ds.add_dataset_members({"Image": rids}, validate=False)
        spec = DatasetSpec(rid=ds.rid, version=str(ds.version), materialize=True)

        copies, colds, cacheds = [], [], []
        for k in range(repeat):
            t0 = time.perf_counter()
            shutil.copytree(source, root / f"copy{k}")
            copies.append(time.perf_counter() - t0)

            # A fresh cache: the last one is moved aside, not deleted, because deleting a thousand
            # folders just before makes the next thousand mkdirs several times slower on a file
            # system mounted with `discard` (the freed blocks are discarded at the next journal
            # commit); copytree also writes into a folder nothing was deleted from.
            if (ml.cache_dir / "bags").exists():
                (ml.cache_dir / "bags").rename(root / f"old-bags{k}")
            t0 = time.perf_counter()
            bag = ml.download_dataset_bag(spec)
            colds.append(time.perf_counter() - t0)
            assert not bag.from_cache
            assert len(bag.list_dataset_members()["Image"]) == n

            t0 = time.perf_counter()
            again = ml.download_dataset_bag(spec)
            cacheds.append(time.perf_counter() - t0)
            assert again.from_cache

        copy, cold, cached = (statistics.median(x) for x in (copies, colds, cacheds))
        # Each cold download against the copytree just before it (the machine's load drifts).
        ratio = statistics.median(c / p for c, p in zip(colds, copies, strict=True))
        print(f"dataset of {n} members with {n} asset files of 1 KB; median of {repeat} runs")
        print(f"{'':<34}{'seconds':>10}{'x copytree':>12}")
        print(f"{'shutil.copytree of the files':<34}{copy:>10.3f}{1.0:>12.1f}")
        print(f"{'download + materialize, cold':<34}{cold:>10.3f}{ratio:>12.2f}")
        print(f"{'download + materialize, cached':<34}{cached:>10.4f}{cached / copy:>12.3f}")
        print("(x copytree of the cold download: the median of each run's ratio to the copytree just before it)")
        ml.catalog.close()
    report("datasets", f"cold download + materialize of a {n:,}-file dataset, x copytree", ratio, 2.0, "x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
