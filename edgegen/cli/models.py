"""`edgegen train` and `edgegen models report | keygen | sign | verify`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgegen.cli.common import DataDirOption, exit_on
from edgegen.models import native_logs, shipped

models_app = typer.Typer(help="Model artifacts: report, keys, signatures.", no_args_is_help=True)
DEFAULT_ARTIFACTS = shipped.artifacts()


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.add_typer(models_app, name="models")


def train(
    data: DataDirOption,
    out: Annotated[
        Path | None, typer.Option(help="Where the artifacts go (default edgegen/models/artifacts/DATASET).")
    ] = None,
    dataset: Annotated[str, typer.Option(help="Which data set: skab.")] = "skab",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per network.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and data, same files.")] = 0,
    prune: Annotated[
        float, typer.Option(min=0, max=0.95, help="Target sparsity of the pruned variant (0: none).")
    ] = 0.5,
    distill: Annotated[bool, typer.Option(help="Train the distilled (student) encoder.")] = True,
    tiny: Annotated[bool, typer.Option(help="A quick run on a subsample (tests, smoke checks).")] = False,
    sequence: Annotated[
        int, typer.Option(min=0, help="The artifacts' sequence number (monotonic per model).")
    ] = 1,
    key: Annotated[Path | None, typer.Option(help="Sign every manifest with this Ed25519 key.")] = None,
) -> None:
    """Train the node models (encoder, pruned and distilled variants, pre-score) and the gateway decoder."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgegen.models import artifact
    from edgegen.models.task import skab_task

    if dataset != "skab":
        typer.echo(f"error: --dataset {dataset!r}: only skab has node models so far", err=True)
        raise typer.Exit(2)
    target = out or DEFAULT_ARTIFACTS / dataset
    with exit_on(OSError):
        task = skab_task(data, limit_experiments=4 if tiny else None)
        columns = (TextColumn("{task.description:10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with native_logs.captured(), Progress(*columns) as bars:
            from edgegen.models.train.pipeline import TrainOptions
            from edgegen.models.train.pipeline import train as run

            options = TrainOptions(
                epochs=2 if tiny else epochs,
                seed=seed,
                prune=prune,
                distill=distill,
                max_train_windows=400 if tiny else None,
            )
            ids: dict[str, object] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in ids:
                    ids[stage] = bars.add_task(stage, total=total)
                bars.update(ids[stage], completed=done)  # type: ignore[arg-type]

            manifests = run(task, target, options, sequence=sequence, progress=progress)
        if key is not None:
            for name in manifests:
                artifact.sign(artifact.paths(target, name)[1], key)
    table = Table(title=f"artifacts in {target} (data fingerprint {task.fingerprint[:12]})")
    for column in ("model", "kind", "bytes", "sha256", "ops"):
        table.add_column(column)
    for name, m in manifests.items():
        table.add_row(name, m.kind, str(m.file.bytes), m.file.sha256[:12], ", ".join(m.ops))
    Console(width=max(Console().width, 150)).print(table)


@models_app.command("report")
def report(
    data: DataDirOption,
    models: Annotated[Path, typer.Option(help="The artifacts to evaluate.")] = DEFAULT_ARTIFACTS / "skab",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the numbers here.")] = None,
    micropython: Annotated[bool, typer.Option(help="Time the firmware interpreter under MicroPython.")] = True,
) -> None:
    """Trade-off (size, MACs, latency, quality per variant) and bandwidth (bytes and detection per mode)."""
    from edgegen.hil import model_report as rep
    from edgegen.models.task import skab_task

    with exit_on(OSError, KeyError), native_logs.captured():
        result = rep.report(skab_task(data), models, measure_micropython=micropython)
    console = Console(width=max(Console().width, 150))
    trade = Table(title="node encoder variants (SKAB; embedding-mode detection on held-back rows)")
    for column in (
        "variant",
        "bytes",
        "gzip",
        "sparsity",
        "MACs",
        "litert µs",
        "MicroPython µs",
        "recon MSE",
        "F1",
        "FAR %",
        "MAR %",
    ):
        trade.add_column(column, justify="left" if column == "variant" else "right")
    for v in result["variants"]:
        mp = "n/a" if v["micropython_us"] is None else f"{v['micropython_us']:.0f}"
        trade.add_row(
            v["name"],
            str(v["bytes"]),
            str(v["gzip_bytes"]),
            f"{v['sparsity']:.2f}",
            str(v["macs"]),
            f"{v['litert_us']:.1f}",
            mp,
            f"{v['recon_mse']:.3f}",
            f"{v['f1']:.3f}",
            f"{v['far']:.1f}",
            f"{v['mar']:.1f}",
        )
    console.print(trade)
    band = Table(title="bytes per window sent, and the gateway's detection with what it received")
    for column in ("mode", "bytes/window", "fewer bytes than JSON", "F1", "FAR %", "MAR %", "raw windows"):
        band.add_column(column, justify="left" if column == "mode" else "right")
    for m in result["modes"]:
        band.add_row(
            m["name"],
            f"{m['bytes_per_window']:.1f}",
            f"{m['ratio_vs_json']:.1f}x",
            f"{m['f1']:.3f}",
            f"{m['far']:.1f}",
            f"{m['mar']:.1f}",
            f"{100 * m['raw_fraction']:.1f} %",
        )
    console.print(band)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1) + "\n")


@models_app.command("keygen")
def keygen(out: Annotated[Path, typer.Option(help="Directory for NAME.key (private) and NAME.pub.")]) -> None:
    """A new Ed25519 signing key pair. Keep the .key off the nodes; give them the .pub."""
    from edgegen.models import artifact

    with exit_on(OSError):
        private, public = artifact.keygen(out)
    typer.echo(f"private key {private} (mode 0600), public key {public}")


@models_app.command("sign")
def sign(
    manifests: Annotated[list[Path], typer.Argument(help="NAME.manifest.json files.")],
    key: Annotated[Path, typer.Option(help="The Ed25519 private key (PEM).")],
) -> None:
    """Sign manifests: writes NAME.manifest.sig next to each."""
    from edgegen.models import artifact

    with exit_on(OSError):
        for manifest in manifests:
            typer.echo(f"signed {artifact.sign(manifest, key)}")


@models_app.command("verify")
def verify(
    manifests: Annotated[list[Path], typer.Argument(help="NAME.manifest.json files.")],
    pubkey: Annotated[list[Path], typer.Option(help="Trusted public key files (repeatable).")],
    board_class: Annotated[str, typer.Option(help="The board class installing it.")] = "any",
    installed_sequence: Annotated[int, typer.Option(help="The sequence number installed now.")] = -1,
) -> None:
    """Check artifacts exactly as a node does: signature, trusted key, sequence, board class, size, SHA-256."""
    from edgegen.models import artifact

    trusted: dict[str, str] = {}
    with exit_on(OSError):
        for path in pubkey:
            trusted.update(artifact.load_public(path))
        for manifest in manifests:
            m = artifact.verify(manifest, trusted, board_class, installed_sequence)
            typer.echo(f"ok {m.name} {m.version} (sequence {m.sequence}, {m.file.bytes} bytes)")
