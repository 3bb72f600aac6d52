"""The command line shared by the figure scripts (``fig_*.py``): one NetCDF result in, PNG and PDF out.

A figure script defines ``draw(dataset) -> Figure`` and calls :func:`figure_main`
from its ``main(argv)``; the options are those `make_all.py` passes:
``--results DIR`` (folder of the analyses' NetCDF results) and ``--out DIR``
(folder for the images).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurodelay.io import atomic_output, read_netcdf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DPI = 200  # dots per inch of the PNG (and of rasterised parts of the PDF)


def figure_main(argv, doc: str, result: str, name: str, draw: Callable[..., plt.Figure],
                optional: tuple = ()) -> int:
    """Parse ``--results DIR --out DIR`` from argv, draw `result` and write ``<out>/<name>.png`` and ``.pdf``.

    doc: the script's docstring (its first line describes the command);
    result: the NetCDF file name in the results folder; draw: Dataset -> Figure;
    optional: ``(result, name)`` pairs drawn the same way where that result exists (e.g. the same
    analysis at another scale). Each image is written atomically; returns 0.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "analyses" / "results",
                        help="folder with the analyses' NetCDF results")
    parser.add_argument("--out", type=Path, default=ROOT / "paper_figures" / "output", help="output folder")
    args = parser.parse_args(argv)
    for res, image in ((result, name), *optional):
        if res != result and not (args.results / res).exists():
            continue
        fig = draw(read_netcdf(args.results / res))
        try:
            for suffix in (".png", ".pdf"):
                target = args.out / f"{image}{suffix}"
                with atomic_output(target) as tmp:
                    fig.savefig(tmp, dpi=DPI, bbox_inches="tight", pad_inches=0.08)  # nothing clipped at the edges
                print(f"wrote {target}")
        finally:
            plt.close(fig)
    return 0
