"""The verdict: three sentences on what metrics/<model>.json say, read by README's results block
(stages/results_table.py, as markdown bullets) and by the top of `thinkrec report` (as HTML)."""
from __future__ import annotations

from pipeline import registry

POINTWISE = ("auc", "uauc")  # the verdict's pointwise metrics, where a comparison has them
LLM_FAMILIES = ("llm", "experts", "rdrec", "fused")  # registry families whose models are (or hold) LLM recommenders


def interval(group: dict, name: str, signed: bool = False) -> str:
    """`value [low, high]` of metric `name` in `group`, "—" when absent or undefined."""
    values = [group.get(key) for key in (name, f"{name}_low", f"{name}_high")]
    if None in values:
        return "—"
    number = "{:+.3f}" if signed else "{:.3f}"
    return f"{number.format(values[0])} [{number.format(values[1])}, {number.format(values[2])}]"


def direction(comparison: dict, name: str) -> str:
    """Whether a paired difference's interval lies above zero, below it, or includes it."""
    if comparison[f"{name}_low"] > 0:
        return "above"
    if comparison[f"{name}_high"] < 0:
        return "below"
    return "not separated"


def difference(comparison: dict, names: list[str]) -> str:
    """"AUC -0.049 [-0.073, -0.026] (below), UAUC ..." for the metrics of `names` the comparison has."""
    return ", ".join(f"{name.upper() if name in POINTWISE else name} {interval(comparison, name, signed=True)}"
                     f" ({direction(comparison, name)})" for name in names if f"{name}_low" in comparison)


def compared_metrics(comparison: dict, headline: list[str]) -> list[str]:
    """AUC and UAUC where the comparison has them, else its first top-N headline metric."""
    pointwise = [name for name in POINTWISE if f"{name}_low" in comparison]
    return pointwise or [name for name in headline if name.startswith("topn_") and f"{name}_low" in comparison][:1]


def verdict_lines(reports: dict[str, dict], llm: list[str], ablations: dict[str, list[str]],
                  headline: list[str]) -> list[tuple[str, str]]:
    """Up to three (title, sentence) pairs: the best of the `llm` rows against the best CF model (AUC,
    UAUC), the main ablation (the model with the most ablations, against each), the first
    full-catalogue headline metric the LLM rows have (else the first sampled top-N one). A line
    whose inputs are missing is left out."""
    lines = []
    scored = [model for model in llm if "auc" in reports[model] and "vs_best_cf" in reports[model]]
    if scored:
        best = max(scored, key=lambda model: reports[model]["auc"])
        comparison = reports[best]["vs_best_cf"]
        above = sum(direction(reports[model]["vs_best_cf"], "auc") == "above" for model in scored)
        lines.append(("Best LLM row on AUC vs the best CF model",
                      f"{best} - {comparison['model']}: {difference(comparison, list(POINTWISE))}; "
                      f"LLM rows above {comparison['model']} on AUC: {above} of {len(scored)}."))
    main = max((model for model in ablations if model in reports), key=lambda model: len(ablations[model]), default=None)
    pairs = [] if main is None else [(reference, reports[main][f"vs_{reference}"]) for reference in ablations[main]
                                     if f"vs_{reference}" in reports[main]]
    if pairs:
        lines.append((f"Main ablation, {main} minus each", "; ".join(
            f"{reference}: {difference(comparison, compared_metrics(comparison, headline))}"
            for reference, comparison in pairs) + "."))
    # the first full-catalogue headline metric the LLM rows have, else the first sampled top-N one
    for topn in [name for name in headline if name.startswith("full_")] + [name for name in headline
                                                                            if name.startswith("topn_")]:
        ranked = [model for model in llm if f"{topn}_low" in reports[model].get("vs_best_cf", {})]
        if ranked:
            break
    else:
        ranked = []
    if ranked:
        best = max(ranked, key=lambda model: reports[model][topn])
        comparison = reports[best]["vs_best_cf"]
        users = reports[best].get("full_users" if topn.startswith("full_") else "topn_users")
        lines.append((f"Top-N, {topn} on {users} users",
                      f"best LLM row {best} {interval(reports[best], topn)}, {comparison['model']} "
                      f"{interval(reports[comparison['model']], topn)}; difference {difference(comparison, [topn])}."))
    return lines


def verdict(reports: dict[str, dict], llm: list[str], ablations: dict[str, list[str]], headline: list[str]) -> list[str]:
    """The verdict as markdown bullets ("- **title**: sentence"), as README's results block has it."""
    return [f"- **{title}**: {sentence}" for title, sentence in verdict_lines(reports, llm, ablations, headline)]


def llm_rows(reports: dict[str, dict]) -> list[str]:
    """The LLM recommenders among the reported models (the CF models and baselines are not)."""
    families = {entry.name: entry.family for entry in registry.models()}
    return [model for model in reports if families.get(model) in LLM_FAMILIES]
