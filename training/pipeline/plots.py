"""The loss curves of a run's trainers, as one PNG."""

from __future__ import annotations

from pathlib import Path

from training.sft import TrainReport


def plot_losses(reports: list[TrainReport], path: Path) -> Path:
    """One panel per trainer with its loss over the steps, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(reports))
    rows = -(-len(reports) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, report in zip(axes.flat, reports, strict=False):
        steps = [p.step for p in report.losses]
        ax.plot(steps, [p.loss for p in report.losses], color="tab:blue")
        ax.set_title(report.name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(reports) :]:
        ax.axis("off")
    figure.tight_layout()
    tmp = path.with_name(path.name + ".part.png")
    figure.savefig(tmp, dpi=90)
    plt.close(figure)
    tmp.replace(path)
    return path
