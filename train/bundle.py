"""Training data that travels in parts: a `datasets` parquet folder (or several) packed into parts of at most
`--part-mib` each, with the wheels a bare training machine lacks, and unpacked there byte for byte.

    python -m train.bundle pack ../shared/fer2013 ../shared/faces_in_the_wild --out runs/bundle --wheels
    python -m train.bundle unpack runs/bundle --out data          # data/fer2013, data/faces_in_the_wild
    python -m train.bundle verify runs/bundle ../shared/fer2013 ../shared/faces_in_the_wild

FER-2013's JPEGs share one 328-byte header (tables and frame), so a part keeps each image's bytes after the
most common header of its file (43.6 MB of scans for the train split's 52 MB parquet); an image with another
header is kept whole. Everything else of a file (labels, paths, other columns, its schema and `datasets`
metadata) goes into a small table in `part-000/`, with the manifest, the files that are not parquet (FER+'s
votes: `ferplus/`) and, with `--wheels`, the wheels of `WHEELS`. Each part is a folder, `part-NNN/`: carry one per
call to a machine that keeps what earlier calls left (the device tool's README), then unpack once all are there.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
IMAGES = "images.parquet"
WHEELS = ("datasets", "evaluate", "dill", "multiprocess")
"""What a CUDA image with torch, timm, accelerate, pyarrow, pandas, OpenCV and ONNX Runtime lacks to train here
(their other requirements, such as xxhash, fsspec and huggingface_hub, it has)."""
HEADER_SCAN = b"\xff\xda"


class BundleError(ValueError):
    """A bundle that cannot be packed, unpacked or verified as asked."""


def jpeg_header(data: bytes) -> bytes:
    """A JPEG's bytes up to the start of its scan (SOS segment included), or b"" where it has none."""
    start = data.find(HEADER_SCAN)
    return data[:start + 2 + int.from_bytes(data[start + 2:start + 4], "big")] if start >= 0 else b""


def pack(datasets: list[str | Path], out: str | Path, part_mib: float = 36.0, wheels: bool = False) -> dict:
    """Pack the `datasets` folders into `out` (see the module's docstring); returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} is not empty: pack into a new folder")
    first = out / "part-000"
    first.mkdir(parents=True)
    manifest = {"datasets": {}, "parts": [], "wheels": []}
    images = []  # (dataset, file, row, bytes kept, whether the header was cut)
    for source in map(Path, datasets):
        if not source.is_dir() or not any(source.rglob("*.parquet")):
            raise BundleError(f"{source} is not a folder of parquet files")
        name = source.name
        entry = manifest["datasets"][name] = {"parquet": {}, "copied": []}
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and path.suffix == ".parquet" and "image" in pq.read_schema(path).names:
                table = pq.read_table(path)
                column = table.column("image").combine_chunks()
                data = column.field("bytes").to_pylist()
                header = Counter(map(jpeg_header, data)).most_common(1)[0][0]
                rest = table.drop_columns(["image"]).append_column("image_path", column.field("path"))
                meta = Path(name, "tables", relative)
                (first / meta).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(rest, first / meta)
                entry["parquet"][relative] = {"rows": len(data), "columns": table.column_names,
                                              "header": header.hex(), "table": meta.as_posix()}
                images += [(name, relative, i, b[len(header):] if header and b.startswith(header) else b,
                            bool(header) and b.startswith(header)) for i, b in enumerate(data)]
            elif path.is_file():
                target = first / name / "files" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                entry["copied"].append(relative)
    limit, part, size = int(part_mib * 2 ** 20), [], 0
    for row in images + [None]:
        if row is None or (part and size + len(row[3]) > limit * 0.97):  # parquet's own pages take the rest
            write_part(out, len(manifest["parts"]), part, manifest)
            part, size = [], 0
        if row is not None:
            part.append(row)
            size += len(row[3])
    if wheels:
        manifest["wheels"] = download_wheels(first / "wheels")
    (first / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_part(out: Path, number: int, rows: list, manifest: dict) -> None:
    folder = out / f"part-{number:03d}"
    folder.mkdir(exist_ok=True)
    table = pa.table({"dataset": [r[0] for r in rows], "file": [r[1] for r in rows],
                      "row": pa.array([r[2] for r in rows], pa.int64()), "data": pa.array([r[3] for r in rows], pa.binary()),
                      "headed": [r[4] for r in rows]})
    pq.write_table(table, folder / IMAGES, compression="none")
    manifest["parts"].append({"folder": folder.name, "images": len(rows), "sha256": sha256(folder / IMAGES)})


def download_wheels(folder: Path) -> list[str]:
    """The wheels of `WHEELS`, at this environment's versions, for Python 3.12 on x86-64 Linux."""
    pins = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--platform", "manylinux2014_x86_64", "-d", str(folder), *pins]
    if subprocess.run(command).returncode:
        raise BundleError(f"pip could not download {' '.join(pins)}")
    return sorted(p.name for p in folder.glob("*.whl"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle: Path) -> dict:
    path = bundle / "part-000" / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} holds no bundle (no part-000/{MANIFEST})")
    return json.loads(path.read_text())


def unpack(bundle: str | Path, out: str | Path) -> list[Path]:
    """Rebuild every dataset folder of `bundle` under `out`; a missing or damaged part is named in one line."""
    bundle, out = Path(bundle), Path(out)
    manifest = read_manifest(bundle)
    first = bundle / "part-000"
    data: dict[tuple[str, str], dict[int, bytes]] = {}
    for part in manifest["parts"]:
        path = bundle / part["folder"] / IMAGES
        if not path.is_file():
            raise BundleError(f"{part['folder']} is missing from {bundle}: carry it too")
        if sha256(path) != part["sha256"]:
            raise BundleError(f"{path} is damaged (its sha256 differs from the manifest's)")
        table = pq.read_table(path).to_pydict()
        for name, file, row, kept, headed in zip(*(table[c] for c in ("dataset", "file", "row", "data", "headed"))):
            header = bytes.fromhex(manifest["datasets"][name]["parquet"][file]["header"]) if headed else b""
            data.setdefault((name, file), {})[row] = header + kept
    folders = []
    for name, entry in manifest["datasets"].items():
        for file, spec in entry["parquet"].items():
            rest = pq.read_table(first / spec["table"])
            rows = data.get((name, file), {})
            if len(rows) != spec["rows"]:
                raise BundleError(f"{name}/{file}: {len(rows)} of {spec['rows']} images in the parts")
            image = pa.StructArray.from_arrays([pa.array([rows[i] for i in range(spec["rows"])], pa.binary()),
                                                rest.column("image_path").combine_chunks()], names=["bytes", "path"])
            table = rest.drop_columns(["image_path"]).append_column("image", image).select(spec["columns"])
            target = out / name / file
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.replace_schema_metadata(rest.schema.metadata), target)
        for file in entry["copied"]:
            (out / name / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(first / name / "files" / file, out / name / file)
        folders.append(out / name)
    return folders


def verify(bundle: str | Path, originals: list[str | Path]) -> dict:
    """Unpack `bundle` into a temporary folder and compare every table and file with the `originals`: equal
    tables (every column, the image bytes included, and the schema's metadata) and equal bytes of the others."""
    import tempfile

    checked = {}
    with tempfile.TemporaryDirectory() as scratch:
        for folder in unpack(bundle, scratch):
            original = next((Path(o) for o in originals if Path(o).name == folder.name), None)
            if original is None:
                raise BundleError(f"no original given for {folder.name}")
            for path in sorted(p for p in original.rglob("*") if p.is_file()):
                relative = path.relative_to(original)
                copy = folder / relative
                if path.suffix == ".parquet" and "image" in pq.read_schema(path).names:
                    same = copy.is_file() and pq.read_table(copy).equals(pq.read_table(path), check_metadata=True)
                else:
                    same = copy.is_file() and copy.read_bytes() == path.read_bytes()
                if not same:
                    raise BundleError(f"{folder.name}/{relative} differs from {path}")
                checked[f"{folder.name}/{relative.as_posix()}"] = "equal"
    return checked


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="pack dataset folders into parts")
    packing.add_argument("datasets", nargs="+", help="datasets parquet folders (their name is kept)")
    packing.add_argument("--out", required=True, help="a new folder for the bundle")
    packing.add_argument("--part-mib", type=float, default=36.0,
                         help="the largest part, MiB (36 travels beside an 18 MB tree under a 64 MiB limit)")
    packing.add_argument("--wheels", action="store_true", help=f"add the wheels of {', '.join(WHEELS)}")
    unpacking = commands.add_parser("unpack", help="rebuild the dataset folders")
    unpacking.add_argument("bundle")
    unpacking.add_argument("--out", required=True, help="the folder to rebuild them in")
    checking = commands.add_parser("verify", help="unpack into a temporary folder and compare with the originals")
    checking.add_argument("bundle")
    checking.add_argument("originals", nargs="+")
    args = p.parse_args(argv)
    try:
        if args.command == "pack":
            manifest = pack(args.datasets, args.out, args.part_mib, args.wheels)
            for part in manifest["parts"]:
                folder = Path(args.out) / part["folder"]
                mib = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2 ** 20
                print(f"{folder}: {part['images']} images, {mib:.1f} MiB")
        elif args.command == "unpack":
            for folder in unpack(args.bundle, args.out):
                print(folder)
        else:
            print(f"{len(verify(args.bundle, args.originals))} files equal to the originals")
    except BundleError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
