"""The paper's figure for a grid study: test accuracy against budget, one line per weak share."""

from __future__ import annotations


def write_study_png(study: dict, path: str) -> None:
    """Draw `study` (GET /studies/{id}) to a PNG; points with no finished seed are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    request = study["request"]
    methods = request["methods"]
    shares = sorted({p["weak_share"] for p in study["points"]})
    colors = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-.", (0, (3, 1, 1, 1))]
    fig, ax = plt.subplots(figsize=(8, 5))
    for m, method in enumerate(methods):
        for s, share in enumerate(shares):
            pts = sorted(
                (p for p in study["points"] if p["method"] == method and p["weak_share"] == share and p["seeds_done"]),
                key=lambda p: p["budget"],
            )
            if not pts:
                continue
            label = f"{share:.0%} weak" + (f" ({method})" if len(methods) > 1 else "")
            ax.errorbar(
                [p["budget"] for p in pts], [p["accuracy"] for p in pts], yerr=_error_bars(pts),
                label=label, color=colors(s / max(len(shares) - 1, 1)), linestyle=styles[m % len(styles)],
                marker="o", markersize=4, capsize=3,
            )
    # Chance is the commonest class's share: 0.5 on a balanced binary task (and in studies saved before).
    ax.axhline(study.get("majority_rate") or 0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xscale("log")
    # The budgets asked for as the ticks: log-scale defaults label few of them. "\\$" is a literal
    # dollar sign, not the start of matplotlib's math text.
    budgets = request["budgets"]
    ax.set_xticks(budgets, [f"\\${b:g}" for b in budgets])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("budget")
    ax.set_ylabel("test accuracy (mean, 90% interval)")
    ax.set_title(
        f"{study['task']} · {request['model']} · recipe {request['recipe']} · "
        f"weak \\${request['weak_cost']:g}, gold \\${request['gold_cost']:g}"
    )
    ax.legend(fontsize=8, title="share of spend on weak labels", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _error_bars(points: list[dict]) -> list[list[float]]:
    """Below and above each mean: its interval where the study has one, else the seed sd."""
    def bar(p: dict) -> tuple[float, float]:
        iv = p.get("interval")
        return (p["accuracy"] - iv["low"], iv["high"] - p["accuracy"]) if iv else (p["accuracy_sd"], p["accuracy_sd"])

    below, above = zip(*(bar(p) for p in points)) if points else ((), ())
    return [list(below), list(above)]
