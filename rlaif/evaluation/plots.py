"""The evaluation's plots: behaves as expected per category, and the slices' largest changes."""

from __future__ import annotations

from pathlib import Path


def plot_by_category(categories: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(categories)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.7), 4))
    for offset, policy in ((-0.2, "baseline"), (0.2, "candidate")):
        ax.bar(x + offset, [categories[n][policy]["correct_rate"] for n in names], 0.4, label=policy)
    ax.set_xticks(x, [f"{n}\n({categories[n]['expected']})" for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("behaves as expected")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("held-out prompts: starting policy vs optimized policy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_slices(slices: dict, path: Path) -> None:
    """The largest regressions (and gains) per slice: candidate minus baseline behaves-as-expected rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = slices["rows"][:10] + [r for r in slices["rows"][-5:] if r not in slices["rows"][:10]]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(rows) + 1)))
    labels = [f"{r['slice']}={r['value']} (n={r['n']})" for r in rows]
    ax.barh(labels, [r["delta"] for r in rows], color=["tab:red" if r["delta"] < 0 else "tab:green" for r in rows])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("change in behaves-as-expected rate (candidate - baseline)")
    ax.set_title("slices: largest regressions first")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
