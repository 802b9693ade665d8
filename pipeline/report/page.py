"""The report page: one HTML string with inline CSS and SVG, built from ReportInputs."""
from __future__ import annotations

import numpy as np

from pipeline import registry
from pipeline.report.collect import ReportInputs, has_interval
from pipeline.report.markup import Html, text
from pipeline.report.svg import box_plot, interval_chart, line_chart
from pipeline.metrics.report import join_report
from pipeline.report.verdict import llm_rows, verdict_lines

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1240px;color:#222;padding:0 16px}
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
td{white-space:nowrap}th{background:#f3f3f3}td.name,th.name{text-align:left}
td.text,th.text{text-align:left;min-width:120px;max-width:380px;white-space:normal;overflow-wrap:anywhere}
.scroll{overflow-x:auto}.iv{display:block;color:#666;font-size:11px}
.best{font-weight:700}.note{color:#666;font-size:12px}ul.verdict{padding-left:20px}ul.verdict li{margin:4px 0}
svg.chart{font:11px sans-serif;margin:6px 16px 6px 0}svg .area{fill:#fafafa;stroke:#999}
svg .grid{stroke:#e4e4e4}svg .chance{stroke:#aaa;stroke-dasharray:4 3}.charts{display:flex;flex-wrap:wrap}
"""


def interval(group: dict, name: str, signed: bool = False) -> str:
    """`value [low, high]` of `name` in `group` ("—" when absent)."""
    value, low, high = (group.get(key) for key in (name, f"{name}_low", f"{name}_high"))
    form = "{:+.3f}" if signed else "{:.3f}"
    if not isinstance(value, (int, float)):
        return "—"
    shown = form.format(value)
    return shown if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) else \
        f"{shown} [{form.format(low)}, {form.format(high)}]"


def interval_cell(group: dict, name: str, signed: bool = False, best: bool = False) -> Html:
    """`interval` as two lines, the value over its [low, high], so that a table of intervals stays
    narrow; `best` makes the value bold."""
    value, _, bounds = interval(group, name, signed).partition(" ")
    shown = f'<span class="best">{text(value)}</span>' if best else text(value)
    return Html(shown + (f" <span class=iv>{text(bounds)}</span>" if bounds else ""))


def headline(models: dict[str, dict], preferred: list[str] | None = None) -> list[str]:
    """Metrics with an interval at the top level of any model's file (a top-N-only model has no
    AUC, a pointwise-only one no top-N): `preferred` ones in that order, then the others in the
    order the files first hold them."""
    found = list(dict.fromkeys(k for m in models.values() for k in m
                               if not k.endswith(("_low", "_high")) and has_interval(m, k)))
    return [k for k in preferred or [] if k in found] + [k for k in found if k not in (preferred or [])]


COLUMNS = 8  # value columns per table: eight two-line intervals and their labels fit a 1280 px screen


def table(header: list, rows: list[list], classes: list[str] | None = None, id_: str = "", labels: int = 1,
          columns: int = COLUMNS) -> str:
    """Every header and cell is data, escaped here (an Html fragment built by this module passes as is).
    More than `columns` columns after the first `labels` ones make several tables, each with the
    labels again (ids: `id_`, then `id_`-2, ...), so that no table is wider than the page."""
    classes = classes or ["name"] + [""] * (len(header) - 1)
    parts = []
    for number, start in enumerate(range(labels, max(len(header), labels + 1), columns)):
        keep = [*range(labels), *range(start, min(start + columns, len(header)))]
        attribute = [f' class="{classes[i]}"' if classes[i] else "" for i in keep]
        head = "".join(f"<th{a}>{text(header[i])}</th>" for i, a in zip(keep, attribute))
        body = "".join("<tr>" + "".join(f"<td{a}>{text(row[i])}</td>" for i, a in zip(keep, attribute)) + "</tr>"
                       for row in rows)
        name = id_ if number == 0 else f"{id_}-{number + 1}"
        id_attribute = f' id="{name}"' if id_ else ""
        parts.append(f'<div class=scroll><table{id_attribute}><thead><tr>{head}</tr></thead><tbody>{body}'
                     "</tbody></table></div>")
    return "".join(parts)


def counts(m: dict) -> list:
    """The rows and users cells of a model: a top-N-only model (no pointwise rows) shows the users
    whose held-out item it ranked; a model with both shows those under its pointwise users."""
    if "topn_users" not in m:
        return [m.get("n_rows", "—"), m.get("n_users", "—")]
    if m.get("n_rows") == 0:
        return ["—", Html(f"{text(m['topn_users'])} top-N")]
    topn = f"<span class=iv>{text(m['topn_users'])} top-N</span>"
    return [m.get("n_rows", "—"), Html(f"{text(m.get('n_users', '—'))} {topn}")]


def verdict_section(models: dict[str, dict], headline: list[str]) -> str:
    """README's verdict (pipeline/report/verdict.py) on the evaluated models, the same lines; a
    metrics file it cannot read is said, not raised."""
    reports = {model: models[model] for model in registry.evaluated() if model in models}
    try:
        lines = verdict_lines(reports, llm_rows(reports), registry.comparisons(), headline)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return f"<p class=note>No verdict: metrics/&lt;model&gt;.json lacks or garbles a field ({text(repr(err))}).</p>"
    if not lines:
        return ""
    items = "".join(f"<li><strong>{text(title)}</strong>: {text(sentence)}</li>" for title, sentence in lines)
    return (f"<ul class=verdict id=verdict>{items}</ul><p class=note>The verdict of README's results block "
            "(python -m stages.results_table), from the same metrics: value [95% interval]; above / below: "
            "the paired difference's interval excludes zero.</p>")


def results_section(models: dict[str, dict], preferred: list[str]) -> str:
    names = headline(models, preferred)
    best = {n: max((m.get(n) for m in models.values() if isinstance(m.get(n), (int, float))), default=None)
            for n in names}
    rows = [[model, *counts(m), *(interval_cell(m, n, best=m.get(n) == best[n]) for n in names)]
            for model, m in models.items()]
    return ("<h2>Results</h2><p class=note>value over its [95% interval] from user-level bootstrap resamples; "
            "bold = best value of the column; — = not measured (top-N-only models have no pointwise rows, "
            "pointwise-only ones no top-N); users: those with pointwise rows, then those whose held-out item "
            "was ranked among top-N candidates.</p>"
            + table(["model", "rows", "users", *names], rows, id_="results", labels=3))


def topn_section(models: dict[str, dict], preferred: list[str]) -> str:
    """One chart per top-N metric at the top level of the files (topn_hr@K, topn_ndcg@K): every
    model that has it, with its interval."""
    charts = [interval_chart([(model, m[name], m[f"{name}_low"], m[f"{name}_high"])
                              for model, m in models.items() if has_interval(m, name)],
                             f"top-N {name.removeprefix('topn_')}", f"{name.removeprefix('topn_').upper()} [95% interval]")
              for name in headline(models, preferred) if name.startswith("topn_")]
    if not charts:
        return ""
    return ("<h2>Top-N ranking</h2><p class=note>each test user's held-out item ranked among sampled "
            "items the user never rated (metrics/&lt;model&gt;.json's topn_* fields; top-N users in the "
            "results table); dot: value, line: 95% interval.</p><div class=charts>" + "".join(charts) + "</div>")


def groups_section(models: dict[str, dict], preferred: list[str]) -> str:
    names = [n for n in headline(models, preferred) if not n.startswith("topn")]
    rows, points = [], []
    for model, m in models.items():
        for group in ("warm", "cold"):
            g = m.get(group)
            if isinstance(g, dict) and any(isinstance(g.get(n), (int, float)) for n in names):
                rows.append([f"{model} ({group})", g.get("n_users", "—"), g.get("n_rows", "—"),
                             *(interval_cell(g, n) for n in names)])
                points.append((f"{model} {group}", *(_float(g.get(k)) for k in ("auc", "auc_low", "auc_high"))))
    if not rows:
        return ""
    return ("<h2>Warm and cold users</h2><p class=note>warm: users with train interactions; cold: without.</p>"
            + table(["model (users)", "users", "rows", *names], rows, id_="groups", labels=3)
            + interval_chart(points, "AUC of warm and cold users", "AUC", groups=2))


def comparisons_section(models: dict[str, dict], preferred: list[str]) -> str:
    names = headline(models, preferred)
    rows = []
    for model, m in models.items():
        for key in sorted(k for k in m if k.startswith("vs_") and isinstance(m[k], dict)):
            c = m[key]
            if c.get("model") == model:
                continue
            reference = f"best CF: {c['model']}" if key == "vs_best_cf" else key[3:]
            rows.append([model, reference, *(interval_cell(c, n, signed=True) for n in names)])
    if not rows:
        return ""
    return ("<h2>Paired differences</h2><p class=note>model minus reference on the same users and "
            "resamples; an interval excluding 0 is a difference the data supports.</p>"
            + table(["model", "minus", *names], rows, ["name", "name"] + [""] * len(names), id_="paired", labels=2))


def clusters_section(models: dict[str, dict]) -> str:
    """Per-cluster metrics (a "clusters" section: cluster -> {auc, uauc, users, rows, ...}), and
    per-cluster differences inside vs_ comparisons, whatever fields are present."""
    blocks = []
    for model, m in models.items():
        sources = [(model, m.get("clusters"))] + [
            (f"{model} minus {key[3:]}", c.get("clusters")) for key, c in sorted(m.items())
            if key.startswith("vs_") and isinstance(c, dict)]
        for label, clusters in sources:
            if not isinstance(clusters, dict) or not clusters:
                continue
            fields = [f for f in next(iter(clusters.values())) if not f.endswith(("_low", "_high"))]
            signed = " minus " in label
            rows = [[k, *(interval_cell(v, f, signed) if isinstance(v.get(f), float) else v.get(f, "—") for f in fields)]
                    for k, v in clusters.items() if isinstance(v, dict)]
            blocks.append(f"<h3>{text(label)}</h3>" + table(["cluster", *fields], rows))
    return "<h2>Per-cluster results</h2>" + "".join(blocks) if blocks else ""


SMOOTHING = 8  # steps averaged in the LLM loss curves (one batch of 8 rows is a noisy estimate)


def moving_average(xs: list, ys: list, window: int) -> tuple[list, list]:
    """(xs, trailing means of ys over `window` points), from the window-th point on."""
    values = np.convolve(np.asarray(ys, float), np.ones(window) / window, mode="valid")
    return (list(xs[window - 1:]), list(values)) if len(ys) >= window else (list(xs), list(ys))


def curves_section(inputs: ReportInputs) -> str:
    charts = []
    if inputs.rec_logs:
        charts.append(line_chart({v: moving_average([s["step"] for s in steps], [s["loss"] for s in steps], SMOOTHING)
                                  for v, steps in inputs.rec_logs.items()},
                                 "LLM recommender training loss", "step",
                                 f"loss, mean of the last {SMOOTHING} steps"))
    if inputs.cf_logs:
        charts.append(line_chart({m: ([e["epoch"] for e in epochs], [e["loss"] for e in epochs])
                                 for m, epochs in inputs.cf_logs.items()}, "CF training loss", "epoch", "loss"))
        charts.append(line_chart({m: ([e["epoch"] for e in epochs], [e["valid_auc"] for e in epochs])
                                  for m, epochs in inputs.cf_logs.items() if "valid_auc" in epochs[0]},
                                 "CF validation AUC", "epoch", "valid AUC"))
    return "<h2>Training curves</h2><div class=charts>" + "".join(charts) + "</div>" if charts else ""


def llm_section(usage: dict[str, dict]) -> str:
    if not usage:
        return ""
    keys = ["calls", "cache_hits", "hit_rate", "tokens_in", "tokens_out", "wall_seconds", "stage_seconds"]
    rows = [[stage, *(_number(u.get(k)) for k in keys)] for stage, u in usage.items()]
    return "<h2>LLM calls per stage</h2>" + table(["stage", *keys], rows, id_="llm")


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else "—"


def _float(value) -> float | None:
    """A number for a chart's coordinates; a field that holds anything else is not drawn."""
    return float(value) if isinstance(value, (int, float)) else None


def explanations_section(inputs: ReportInputs, examples: int) -> str:
    parts = []
    if inputs.explanation_metrics:
        keys = ["bleu4", "rouge_l", "meteor", "bertscore_f1", "n_rows", "mean_new_words"]
        parts.append(table(["model", *keys], [[m, *(_number(v.get(k)) for k in keys)]
                                             for m, v in inputs.explanation_metrics.items()]))
    frame = inputs.explanations
    if frame is not None and len(frame):
        rows = frame["row"].drop_duplicates().head(examples)
        models = list(dict.fromkeys(frame["model"]))
        body = []
        for row in rows:
            part = frame[frame["row"] == row]
            gold = part["gold"].iloc[0]
            texts = [part.loc[part["model"] == m, "explanation"].iloc[0] if (part["model"] == m).any()
                     else "—" for m in models]
            body.append([int(row), gold, *texts])
        parts.append(table(["row", "gold (the teacher's trace)", *models], body, ["name"] + ["text"] * (len(models) + 1),
                           id_="explanations", labels=2, columns=4))
    return "<h2>Explanations</h2>" + "".join(parts) if parts else ""


def experiment_records(experiments: list[dict]) -> list[tuple[str, dict]]:
    """(label, data) of each workspace/commit record of `dvc exp show --json` and of the experiments
    under it (their records sit in "experiments": [{"name", "revs": [...]}])."""
    records = []
    for entry in experiments:
        if not isinstance(entry, dict):
            continue
        records.append((entry.get("name") or _short(str(entry.get("rev", ""))), entry.get("data") or {}))
        for experiment in entry.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                label = f"{rev.get('name') or experiment.get('name')} ({_short(str(rev.get('rev', '')))})"
                records.append((label, rev.get("data") or {}))
    return records


def _short(rev: str) -> str:
    """A commit's sha cut to 7 characters; other revs ("workspace") as they are."""
    return rev[:7] if len(rev) == 40 else rev


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def experiments_section(inputs: ReportInputs, max_params: int = 6) -> str:
    records = experiment_records(inputs.experiments)
    if not records:
        return ""
    params = [_flat(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}) for _, data in records]
    changed = sorted(k for k in set().union(*params) if len({repr(p.get(k)) for p in params}) > 1)[:max_params]
    models = list(inputs.models)
    rows = []
    for (label, data), flat in zip(records, params):
        metrics = data.get("metrics") or {}
        aucs = [interval_cell(join_report((metrics.get(f"metrics/{m}.json") or {}).get("data") or {}, None), "auc")
                for m in models]  # a headline file: its intervals as {metric: [low, high]}
        rows.append([label, *(flat.get(k, "—") for k in changed), *aucs])
    return ("<h2>Experiments (dvc exp show)</h2><p class=note>workspace, commits and experiments: the params "
            "that differ between them, then each model's AUC [95% interval].</p>"
            + table(["experiment", *changed, *(f"{m} AUC" for m in models)], rows,
                    ["name", *(["text"] * len(changed)), *([""] * len(models))], id_="experiments"))


def render(inputs: ReportInputs, title: str = "thinkrec report", examples: int = 3) -> str:
    sections = [f"<h1>{text(title)}</h1>"]
    if inputs.models:
        sections.append(verdict_section(inputs.models, inputs.headline))
        sections.append(results_section(inputs.models, inputs.headline))
        if inputs.marks:  # shown, with what is off about them (pipeline/report/collect.py)
            sections.append("<p class=note id=marks>" + "; ".join(
                f"{text(model)}: {text(mark)}" for model, mark in sorted(inputs.marks.items())) + "</p>")
    else:
        sections.append("<p>No evaluated models yet: run <code>dvc repro evaluate</code>.</p>")
    if inputs.roc:
        sections.append("<h2>ROC curves</h2>" + line_chart(
            inputs.roc, "ROC of every model", "false positive rate", "true positive rate",
            width=420, height=420, diagonal=True, unit_square=True))
    if inputs.user_auc:
        sections.append(f"<h2>Per-user AUC ({text(inputs.subset)})</h2><p class=note>users with liked and "
                        "not-liked rows; box: quartiles, whiskers: 5th-95th percentile, diamond: mean.</p>"
                        + box_plot(inputs.user_auc, "per-user AUC", "AUC of one user's rows"))
    sections += [topn_section(inputs.models, inputs.headline),
                 groups_section(inputs.models, inputs.headline), comparisons_section(inputs.models, inputs.headline), clusters_section(inputs.models),
                 curves_section(inputs), llm_section(inputs.llm), explanations_section(inputs, examples),
                 experiments_section(inputs)]
    if inputs.skipped:
        sections.append("<h2>Not shown</h2><ul>" + "".join(f"<li>{text(s)}</li>" for s in inputs.skipped) + "</ul>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>" + text(title) + "</title><style>"
            + CSS + "</style></head><body>" + "".join(s for s in sections if s) + "</body></html>\n")
