"""Segmenting scan files: each scan's mask (and overlay) written, or the one-line reason it was skipped;
one scan's failure, whatever it is, never ends the run (``rdanet-gan segment`` exits 3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import real_path
from rdanet_gan.inference.outputs import output_paths, write_mask
from rdanet_gan.inference.predict import ScanSegmentation, segment_scan
from rdanet_gan.inference.scans import read_scan, refuse_degenerate

if TYPE_CHECKING:
    import keras

    from rdanet_gan.inference.settings import InferenceSettings


def segment_files(
    model: keras.Model, files: Sequence[Path], out: str | Path, settings: InferenceSettings | None = None,
    overlay: bool = False, overwrite: bool = False, protected: set[Path] = frozenset(),
) -> Iterator[tuple[Path, ScanSegmentation | str]]:
    """Segment each scan file into ``NAME_mask.png`` (and ``NAME_overlay.png``) in folder ``out``; yield it
    with its mask and peak probability, or with the problem that skipped it (a degenerate scan, an output that
    :func:`~rdanet_gan.inference.outputs.output_paths` refuses: ``protected``, or an earlier scan's)."""
    written: dict[Path, Path] = {}
    for path in files:
        try:
            outputs = output_paths(path, out, overlay, overwrite, protected, written)
            image = read_scan(path)
            refuse_degenerate(path, image)
            result = segment_scan(model, image, settings)
            write_mask(result.mask, outputs[0], overwrite=True)
            if overlay:
                from rdanet_gan.inference.overlay import plot_overlay  # matplotlib: only when asked for

                plot_overlay(image, None, result.mask, outputs[1], title=path.name)
        except RdanetError as error:
            yield path, str(error)
        except Exception as error:  # noqa: BLE001 - one scan's failure, whatever it is, must not end the batch
            yield path, f"{path}: {type(error).__name__}: {error}".splitlines()[0]
        else:
            written.update((real_path(output), path) for output in outputs)
            yield path, result
