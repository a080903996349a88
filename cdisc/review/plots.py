"""Plots of the review report, drawn from a build's ADaM datasets with matplotlib as inline SVG.

Each ``plot_*`` function takes the ADaM frames (name -> DataFrame, as ``read_adam`` gives
them: dates as SAS day numbers) and returns a :class:`Plot`: the SVG text, or a note saying
which dataset or variable is missing (another study, e.g. the CDISC pilot, has no ADRS or
ADPC: that plot is skipped, the report still renders). SVG output is deterministic: a fixed
``svg.hashsalt`` per plot, text as text (``svg.fonttype: none``), no date or other metadata.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .km import kaplan_meier, number_at_risk

ADAM_NEEDED = ("ADSL", "ADEX", "ADRS", "ADTTE", "ADPC", "ADLB", "ADAE", "ADCRS")
RESPONSE_COLOURS = {"CR": "#1a9850", "CRh": "#66bd63", "CRi": "#a6d96a", "PR": "#fdae61", "NR": "#d73027",
                    "PD": "#7f0000", "RELAPSED DISEASE": "#7f0000", "NE": "#999999"}
GRADE_COLOURS = {1: "#fee08b", 2: "#fdae61", 3: "#f46d43", 4: "#d73027", 5: "#67001f"}


#: Per-subject plots (swimmer lanes, one PK or CD7 line per subject with the subject in the
#: legend) are read subject by subject in a dose-escalation study; above this many subjects they
#: cannot be read (10,000 lanes) and take minutes to draw: the swimmer plot is not drawn (the
#: listings have every subject) and the curves become the median with the 10th-90th percentile
#: band per dose level and time point.
MAX_SUBJECT_LINES = 40


@dataclass
class Plot:
    id: str
    title: str
    svg: str | None = None
    note: str | None = None                  # why it was skipped, or a caption
    tables: list[str] = field(default_factory=list)   # HTML tables that go with it (already escaped)


def read_adam(folder: Path) -> dict[str, pd.DataFrame]:
    """The ADaM datasets of a build folder that the plots use (missing ones are left out)."""
    from cdisc.delivered import read_delivered

    out = {}
    for name in ADAM_NEEDED:
        path = Path(folder) / "adam" / f"{name.lower()}.xpt"
        if path.is_file():
            d = read_delivered(path)
            if d is not None:
                out[name] = d.frame
    return out


def _missing(adam: dict, needs: dict[str, list[str]]) -> str | None:
    for ds, cols in needs.items():
        if ds not in adam:
            return f"{ds} is not in this build"
        lacking = [c for c in cols if c not in adam[ds].columns]
        if lacking:
            return f"{ds} has no {', '.join(lacking)}"
    return None


RC = {"font.family": "DejaVu Sans", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False,
      "svg.fonttype": "none"}


def _svg(fig, salt: str) -> str:
    """The figure as an inline <svg> element: deterministic, no XML prolog, no metadata block."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"cdisc-{salt}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r'\1', text, count=1).replace(
        "<svg ", f'<svg role="img" aria-label="{salt}" style="max-width:100%;height:auto" ', 1)


def _figure(w: float, h: float, **kw):
    """A matplotlib Figure (no pyplot: no global figure list, no backend switch) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.subplots(**kw)


def _num(s) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _dose_levels(adsl: pd.DataFrame) -> list[str]:
    """Dose levels (TRT01A) in TRT01AN order when present, else by name."""
    if "TRT01AN" in adsl:
        order = adsl[["TRT01A", "TRT01AN"]].drop_duplicates().sort_values(["TRT01AN", "TRT01A"])
        return [str(x) for x in order["TRT01A"] if str(x)]
    return sorted(str(x) for x in adsl["TRT01A"].unique() if str(x))


def _day(date: pd.Series, start: pd.Series) -> pd.Series:
    """Study day of a SAS date relative to the first dose (day 1 = TRTSDT)."""
    return _num(date) - _num(start) + 1


def plot_swimmer(adam: dict) -> Plot:
    """One lane per subject from the first dose to the last known alive date: infusions
    (ADEX), response assessments (ADRS PARAMCD OVR, coloured), MRD status (ADRS MRDSTAT),
    relapse, allogeneic HSCT and death (ADSL RLPSDT, PHSCTDT, DTHDT), and an arrow when the
    subject is alive at the data cut (censored)."""
    p = Plot("swimmer", "Swimmer plot: treatment, response and outcome per subject")
    why = _missing(adam, {"ADSL": ["USUBJID", "TRT01A", "TRTSDT"], "ADRS": ["USUBJID", "PARAMCD", "AVALC", "ADT"]})
    if why:
        p.note = f"Not drawn: {why}."
        return p
    adsl = adam["ADSL"].copy()
    adsl = adsl[_num(adsl["TRTSDT"]).notna()]
    if len(adsl) > MAX_SUBJECT_LINES:
        p.note = (f"Not drawn: {len(adsl)} treated subjects; one lane per subject is drawn for up to "
                  f"{MAX_SUBJECT_LINES} (the Kaplan-Meier curves and the listings cover every subject).")
        return p
    end_col = next((c for c in ("LSTALVDT", "EOSDT", "DCUTDT") if c in adsl), None)
    adsl["_end"] = _day(adsl[end_col], adsl["TRTSDT"]) if end_col else np.nan
    for c, name in (("DTHDT", "_death"), ("RLPSDT", "_relapse"), ("PHSCTDT", "_hsct")):
        adsl[name] = _day(adsl[c], adsl["TRTSDT"]) if c in adsl else np.nan
    adsl["_end"] = adsl[["_end", "_death"]].max(axis=1)
    levels = _dose_levels(adsl)
    adsl["_lvl"] = adsl["TRT01A"].map({v: i for i, v in enumerate(levels)})
    adsl = adsl.sort_values(["_lvl", "_end", "USUBJID"], ascending=[True, False, True]).reset_index(drop=True)
    lane = dict(zip(adsl["USUBJID"], range(len(adsl))))
    start = dict(zip(adsl["USUBJID"], adsl["TRTSDT"]))
    fig, ax = _figure(9, 0.42 * len(adsl) + 1.6)
    cmap = ["#4575b4", "#91bfdb", "#313695", "#74add1", "#abd9e9"]
    for i, lvl in enumerate(levels):
        sub = adsl[adsl["_lvl"] == i]
        ax.barh(sub["USUBJID"].map(lane), sub["_end"].fillna(1), left=0, height=0.5, color=cmap[i % len(cmap)],
                alpha=0.35, label=lvl)
    if "ADEX" in adam and {"USUBJID", "ASTDT"} <= set(adam["ADEX"].columns):
        ex = adam["ADEX"]
        per_infusion = ex["PARAMCD"].isin(["DOSEKG", "CELLS", "DOSE"]) if "PARAMCD" in ex else None
        if per_infusion is not None and per_infusion.any():      # the per-infusion parameters, not totals
            ex = ex[per_infusion]
        ex = ex[ex["USUBJID"].isin(lane) & _num(ex["ASTDT"]).notna()].drop_duplicates(["USUBJID", "ASTDT"])
        ax.scatter(_day(ex["ASTDT"], ex["USUBJID"].map(start)), ex["USUBJID"].map(lane), marker="v", s=40,
                   color="#08306b", zorder=3, label="Infusion")
    rs = adam["ADRS"]
    ovr = rs[(rs["PARAMCD"] == "OVR") & rs["USUBJID"].isin(lane)]
    for resp, colour in RESPONSE_COLOURS.items():
        r = ovr[ovr["AVALC"] == resp]
        if len(r):
            ax.scatter(_day(r["ADT"], r["USUBJID"].map(start)), r["USUBJID"].map(lane), marker="o", s=36,
                       color=colour, edgecolors="black", linewidths=0.4, zorder=4, label=resp)
    if "MRDSTAT" in rs:
        for status, mk in (("NEGATIVE", "$-$"), ("POSITIVE", "$+$")):
            m = rs[(rs["MRDSTAT"] == status) & rs["USUBJID"].isin(lane)].drop_duplicates(["USUBJID", "ADT"])
            if len(m):
                ax.scatter(_day(m["ADT"], m["USUBJID"].map(start)), m["USUBJID"].map(lane) + 0.38, marker=mk,
                           s=40, color="#542788", zorder=4, label=f"MRD {status.lower()}")
    for col, mk, colour, label in (("_relapse", "D", "#b2182b", "Relapse"), ("_hsct", "s", "#35978f", "Allo HSCT"),
                                   ("_death", "X", "black", "Death")):
        d = adsl[adsl[col].notna()]
        if len(d):
            ax.scatter(d[col], d["USUBJID"].map(lane), marker=mk, s=50, color=colour, zorder=5, label=label)
    alive = adsl[adsl["_death"].isna() & adsl["_end"].notna()]
    if len(alive):
        ax.scatter(alive["_end"] + 4, alive["USUBJID"].map(lane), marker=">", s=30, color="#555555", zorder=5,
                   label="Alive at last contact (censored)")
    ax.set_yticks(range(len(adsl)), adsl["USUBJID"].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("Study day (day 1 = first dose)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    p.svg = _svg(fig, "swimmer")
    p.note = f"{len(adsl)} treated subjects; responses from ADRS PARAMCD OVR."
    return p


KM_PARAMS = (("OS", "Overall survival"), ("LFS", "Leukemia-free survival"), ("DOR", "Duration of response"))


def _nice_ticks(tmax: float) -> np.ndarray:
    """0 and multiples of the first of 30, 60, 90, 180, 365, ... that gives at most 6 ticks up to ``tmax``."""
    for step in (7, 14, 30, 60, 90, 180, 365, 730, 1825):
        if tmax / step <= 5:
            break
    return np.arange(0, tmax + step * 0.999, step)[: int(tmax // step) + 1].astype(float)


def plot_km(adam: dict) -> Plot:
    """Kaplan-Meier curves for OS, LFS and DOR (ADTTE AVAL, CNSR; all subjects), censoring
    ticks, median, and the numbers at risk under each panel."""
    p = Plot("km", "Kaplan-Meier curves: OS, LFS, DOR")
    why = _missing(adam, {"ADTTE": ["PARAMCD", "AVAL", "CNSR"]})
    if why:
        p.note = f"Not drawn: {why}."
        return p
    tte = adam["ADTTE"]
    params = [(c, t) for c, t in KM_PARAMS if (tte["PARAMCD"] == c).any()]
    if not params:
        p.note = "Not drawn: ADTTE has none of PARAMCD OS, LFS, DOR."
        return p
    fig, axes = _figure(4.2 * len(params), 3.6, ncols=len(params), squeeze=False)
    rows = []
    for ax, (code, title) in zip(axes[0], params):
        d = tte[tte["PARAMCD"] == code]
        unit = str(d["AVALU"].iloc[0]).lower() if "AVALU" in d and len(d) else "days"
        km = kaplan_meier(d["AVAL"], _num(d["CNSR"]) == 0)
        tmax = float(np.nanmax(_num(d["AVAL"]))) if _num(d["AVAL"]).notna().any() else 1.0
        ax.step(np.append(km.time, tmax), np.append(km.survival, km.survival[-1]), where="post", color="#2166ac")
        ax.scatter(km.censor_times, [km.at(t) for t in km.censor_times], marker="|", s=60, color="#2166ac")
        ax.set_ylim(0, 1.05)
        ticks = _nice_ticks(tmax)
        ax.set_xticks(ticks)
        ax.set_xlabel(f"Time ({unit})")
        ax.set_title(f"{title} ({code})", fontsize=9)
        med = km.median
        ax.text(0.98, 0.98, f"n={km.n}, events={int(km.events.sum())}\nmedian={'NR' if med is None else f'{med:g}'}",
                transform=ax.transAxes, ha="right", va="top", fontsize=7)
        nar = number_at_risk(d["AVAL"], ticks)
        for t, k in zip(ticks, nar):
            ax.annotate(str(k), (t, 0), xytext=(0, -34), textcoords="offset points", ha="center", fontsize=7,
                        annotation_clip=False)
        ax.annotate("At risk", (0, 0), xytext=(-30, -34), textcoords="offset points", ha="right", fontsize=7,
                    annotation_clip=False)
        rows.append((code, ticks, nar, km.median))
    axes[0][0].set_ylabel("Probability")
    fig.subplots_adjust(bottom=0.25, wspace=0.3)
    p.svg = _svg(fig, "km")
    p.note = "Kaplan-Meier estimates of all subjects with the parameter (cdisc.review.km); ticks mark censoring."
    return p


def _median_band(ax, d: pd.DataFrame, colour: str, label: str) -> None:
    """Median of ``_y`` per ``_t`` with the 10th-90th percentile band (a large study's curves)."""
    g = d.groupby("_t", sort=True)["_y"]
    q = pd.DataFrame({"lo": g.quantile(0.10), "med": g.median(), "hi": g.quantile(0.90), "n": g.size()})
    ax.fill_between(q.index, q["lo"], q["hi"], color=colour, alpha=0.2, lw=0)
    ax.plot(q.index, q["med"], marker="o", ms=3, lw=1.2, color=colour, label=label)


def plot_pk(adam: dict) -> Plot:
    """Concentration-time curves per dose level (ADPC AVAL by AFRLT or NFRLT, log scale);
    BLQ samples (BLQFL = Y) drawn as open markers at LLOQ/2."""
    p = Plot("pk", "PK concentration-time per dose level")
    why = _missing(adam, {"ADPC": ["USUBJID", "AVAL"]})
    if why:
        p.note = f"Not drawn: {why}."
        return p
    pc = adam["ADPC"].copy()
    tcol = next((c for c in ("AFRLT", "NFRLT", "ARRLT") if c in pc), None)
    if tcol is None:
        p.note = "Not drawn: ADPC has no AFRLT or NFRLT."
        return p
    grp = "TRT01A" if "TRT01A" in pc else None
    levels = _dose_levels(pc) if grp else ["All"]
    many = pc["USUBJID"].nunique() > MAX_SUBJECT_LINES
    if many and "NFRLT" in pc:
        tcol = "NFRLT"                     # summaries per nominal time point, as PK reports give them
    pc["_t"] = _num(pc[tcol])
    pc["_y"] = _num(pc["AVAL"])
    blq = (pc["BLQFL"] == "Y") if "BLQFL" in pc else pd.Series(False, index=pc.index)
    lloq = _num(pc["PCLLOQ"]) if "PCLLOQ" in pc else pd.Series(np.nan, index=pc.index)
    pc["_blq_y"] = (lloq / 2).where(lloq.notna(), np.nan)
    pc = pc[pc["_t"].notna() & (pc["_t"] >= 0 if tcol != "ARRLT" else True)]
    blq = blq.reindex(pc.index)
    fig, axes = _figure(4.0 * len(levels), 3.4, ncols=len(levels), squeeze=False, sharey=True)
    unit = str(pc["AVALU"].iloc[0]) if "AVALU" in pc and len(pc) else ""
    for ax, lvl in zip(axes[0], levels):
        d = pc if grp is None else pc[pc[grp] == lvl]
        b = blq.reindex(d.index)
        q = d[~b & (d["_y"] > 0)]
        if many:
            _median_band(ax, q, "#2166ac", "median, 10th-90th percentile")
        else:
            for subj, s in q.groupby("USUBJID", sort=True):
                ax.plot(s["_t"], s["_y"], marker="o", ms=3, lw=1, label=str(subj)[-7:])
        bl = d[b & d["_blq_y"].notna()]
        if len(bl) and many:
            ax.text(0.98, 0.02, f"{len(bl)} BLQ samples", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
        elif len(bl):
            ax.scatter(bl["_t"], bl["_blq_y"], marker="o", facecolors="none", edgecolors="#b2182b", s=22, zorder=3,
                       label="BLQ (at LLOQ/2)")
        ax.set_yscale("log")
        ax.set_title(str(lvl), fontsize=9)
        ax.set_xlabel(f"Time from first dose ({'h' if tcol != 'ARRLT' else 'h from last dose'})")
        ax.legend(fontsize=6, frameon=False)
    axes[0][0].set_ylabel(f"Concentration ({unit})" if unit else "Concentration")
    p.svg = _svg(fig, "pk")
    p.note = f"{int((~blq).sum())} quantifiable and {int(blq.sum())} BLQ samples (ADPC BLQFL)." + (
        f" {pc['USUBJID'].nunique()} subjects: median and 10th-90th percentile of the quantifiable samples per "
        f"{'nominal ' if tcol == 'NFRLT' else ''}time point, not one curve per subject (more than "
        f"{MAX_SUBJECT_LINES})." if many else "")
    return p


def plot_cd7(adam: dict) -> Plot:
    """CD7+ absolute count and % of lymphocytes over time (ADLB PARAMCD CD7, CD7LY by ADY),
    one line per subject, coloured by dose level."""
    p = Plot("cd7", "CD7+ cells over time")
    why = _missing(adam, {"ADLB": ["USUBJID", "PARAMCD", "AVAL", "ADY"]})
    if why:
        p.note = f"Not drawn: {why}."
        return p
    lb = adam["ADLB"]
    params = [c for c in ("CD7", "CD7LY") if (lb["PARAMCD"] == c).any()]
    if not params:
        p.note = "Not drawn: ADLB has no PARAMCD CD7 or CD7LY."
        return p
    levels = _dose_levels(lb) if "TRT01A" in lb else ["All"]
    colours = dict(zip(levels, ["#4575b4", "#f46d43", "#1a9850", "#762a83", "#8c510a"]))
    fig, axes = _figure(5.0 * len(params), 3.4, ncols=len(params), squeeze=False)
    many = False
    for ax, code in zip(axes[0], params):
        d = lb[lb["PARAMCD"] == code].assign(_x=lambda f: _num(f["ADY"]), _y=lambda f: _num(f["AVAL"]))
        d = d[d["_x"].notna() & d["_y"].notna()].sort_values(["USUBJID", "_x"])
        if d["USUBJID"].nunique() > MAX_SUBJECT_LINES:
            many = True
            for lvl in levels:
                sub = d[d["TRT01A"].astype(str) == lvl] if "TRT01A" in d else d
                if len(sub):
                    _median_band(ax, sub.rename(columns={"_x": "_t"}), colours.get(lvl, "#555555"), lvl)
        else:
            seen = set()
            for subj, s in d.groupby("USUBJID", sort=True):
                lvl = str(s["TRT01A"].iloc[0]) if "TRT01A" in s else "All"
                ax.plot(s["_x"], s["_y"], marker="o", ms=2.5, lw=1, color=colours.get(lvl, "#555555"),
                        label=lvl if lvl not in seen else None)
                seen.add(lvl)
        ax.set_title(str(d["PARAM"].iloc[0]) if "PARAM" in d and len(d) else code, fontsize=9)
        ax.set_xlabel("Study day")
        ax.legend(fontsize=6, frameon=False)
    p.svg = _svg(fig, "cd7")
    if many:
        p.note = (f"More than {MAX_SUBJECT_LINES} subjects: median and 10th-90th percentile per dose level and "
                  "study day, not one line per subject.")
    return p


def _worst_grade(df: pd.DataFrame, col: str) -> pd.Series:
    return _num(df[col]) if col in df else pd.Series(np.nan, index=df.index)


def ae_table(adam: dict) -> tuple[str | None, str | None]:
    """Subjects by SOC / PT and worst grade (ADAE, TRTEMFL = Y when present) as an HTML table,
    or a note. Counts are subjects (each subject once per row, at their worst grade)."""
    from html import escape

    why = _missing(adam, {"ADAE": ["USUBJID", "AEDECOD"]})
    if why:
        return None, f"Not drawn: {why}."
    ae = adam["ADAE"]
    if "TRTEMFL" in ae and (ae["TRTEMFL"] == "Y").any():
        ae = ae[ae["TRTEMFL"] == "Y"]
    soc = "AEBODSYS" if "AEBODSYS" in ae else ("AESOC" if "AESOC" in ae else None)
    gcol = next((c for c in ("ATOXGRN", "ATOXGR", "AETOXGR") if c in ae), None)
    ae = ae.assign(_soc=ae[soc].astype(str) if soc else "", _g=_worst_grade(ae, gcol) if gcol else np.nan)
    per = ae.groupby(["_soc", "AEDECOD", "USUBJID"], dropna=False)["_g"].max().reset_index()
    n_total = ae["USUBJID"].nunique()
    grades = [1, 2, 3, 4, 5]
    counts = (per.assign(_gi=per["_g"].fillna(0).astype(int))
              .pivot_table(index=["_soc", "AEDECOD"], columns="_gi", values="USUBJID", aggfunc="count", fill_value=0))
    any_n = per.groupby(["_soc", "AEDECOD"])["USUBJID"].nunique()
    soc_n = per.groupby("_soc")["USUBJID"].nunique()
    head = "".join(f"<th>Grade {g}</th>" for g in grades)
    rows = [f'<table class="ae"><tr><th>System organ class / preferred term</th><th>Subjects</th>{head}</tr>']
    for s in sorted(soc_n.index):
        rows.append(f'<tr class="soc"><td>{escape(s)}</td><td class="n">{soc_n[s]}</td>'
                    + "".join("<td></td>" for _ in grades) + "</tr>")
        for (s2, pt), n in any_n.loc[[s]].sort_values(ascending=False, kind="stable").items():
            cells = "".join(f'<td class="n">{int(counts.loc[(s2, pt)].get(g, 0)) or ""}</td>' for g in grades)
            rows.append(f'<tr><td class="pt">{escape(str(pt))}</td><td class="n">{n}</td>{cells}</tr>')
    rows.append("</table>")
    return "".join(rows), (f"{n_total} subjects with a treatment-emergent AE; each subject counted once per term, "
                           f"at the worst grade ({gcol or 'no grade variable'}).")


def plot_ae(adam: dict) -> Plot:
    """AE summary: the most frequent preferred terms by worst grade (subjects, stacked), and
    CRS / ICANS worst grade by dose level (ADCRS ACAT1 + ASTCTGRN, else ADAE CRSGRN /
    ICANSGRN), with the subject table of SOC / PT by worst grade."""
    p = Plot("ae", "Adverse events: subjects by preferred term and worst grade; CRS and ICANS by dose level")
    table, note = ae_table(adam)
    if table is None:
        p.note = note
        return p
    p.tables.append(table)
    p.note = note
    ae = adam["ADAE"]
    if "TRTEMFL" in ae and (ae["TRTEMFL"] == "Y").any():
        ae = ae[ae["TRTEMFL"] == "Y"]
    gcol = next((c for c in ("ATOXGRN", "ATOXGR", "AETOXGR") if c in ae), None)
    per = (ae.assign(_g=_worst_grade(ae, gcol) if gcol else 0).groupby(["AEDECOD", "USUBJID"])["_g"].max()
           .reset_index())
    top = per.groupby("AEDECOD")["USUBJID"].nunique().sort_values(ascending=False, kind="stable").head(15)
    crs = _crs_icans(adam)
    fig, axes = _figure(11, max(3.0, 0.28 * len(top) + 1.2), ncols=2 if crs is not None else 1, squeeze=False,
                        gridspec_kw={"width_ratios": [1.6, 1]} if crs is not None else None)
    ax = axes[0][0]
    left = np.zeros(len(top))
    y = np.arange(len(top))
    by_grade = (per.assign(_gi=per["_g"].fillna(0).astype(int))
                .pivot_table(index="AEDECOD", columns="_gi", values="USUBJID", aggfunc="count", fill_value=0)
                .reindex(top.index, fill_value=0))
    for g in (0, 1, 2, 3, 4, 5):
        k = by_grade[g].to_numpy() if g in by_grade else np.zeros(len(top), dtype=int)
        if k.any():
            ax.barh(y, k, left=left, color=GRADE_COLOURS.get(g, "#8da0cb"),
                    label=f"Grade {g}" if g else "No toxicity grade")
        left += k
    ax.set_yticks(y, [str(t)[:45] for t in top.index])
    ax.invert_yaxis()
    ax.set_xlabel("Subjects")
    ax.set_title("Most frequent preferred terms (worst grade)", fontsize=9)
    ax.legend(fontsize=6, frameon=False, loc="lower right")
    if crs is not None:
        ax2 = axes[0][1]
        cats = list(crs.columns)
        levels = list(crs.index.get_level_values(0).unique())
        width = 0.8 / max(len(levels), 1)
        for i, lvl in enumerate(levels):
            for j, cat in enumerate(cats):
                bottom = 0
                for g in (1, 2, 3, 4, 5):
                    n = int(crs.loc[(lvl, g), cat]) if (lvl, g) in crs.index else 0
                    if n:
                        ax2.bar(j + (i - (len(levels) - 1) / 2) * width, n, width * 0.9, bottom=bottom,
                                color=GRADE_COLOURS[g], edgecolor="white", linewidth=0.5)
                    bottom += n
                ax2.annotate(str(lvl).replace("VGO-Cs01p ", "")[:14], (j + (i - (len(levels) - 1) / 2) * width, bottom),
                             xytext=(0, 2), textcoords="offset points", ha="center", fontsize=5.5, rotation=90)
        ax2.set_xticks(range(len(cats)), cats)
        ax2.set_ylabel("Subjects (worst grade)")
        ax2.set_title("CRS and ICANS by dose level", fontsize=9)
    p.svg = _svg(fig, "ae")
    return p


def _crs_icans(adam: dict) -> pd.DataFrame | None:
    """Subjects by (dose level, worst grade) x (CRS, ICANS), or None when neither is recorded."""
    if "ADCRS" in adam and {"USUBJID", "ACAT1", "ASTCTGRN"} <= set(adam["ADCRS"].columns):
        d = adam["ADCRS"]
        d = d.assign(_cat=np.where(d["ACAT1"].astype(str).str.upper().str.startswith("ICANS"), "ICANS", "CRS"),
                     _g=_num(d["ASTCTGRN"]))
    elif "ADAE" in adam and {"CRSGRN", "ICANSGRN"} <= set(adam["ADAE"].columns):
        a = adam["ADAE"]
        d = pd.concat([a.assign(_cat="CRS", _g=_num(a["CRSGRN"])), a.assign(_cat="ICANS", _g=_num(a["ICANSGRN"]))])
    else:
        return None
    d = d[d["_g"].notna() & (d["_g"] > 0)]
    if not len(d) or "TRT01A" not in d:
        return None
    worst = d.groupby(["TRT01A", "_cat", "USUBJID"])["_g"].max().astype(int).reset_index()
    tab = worst.pivot_table(index=["TRT01A", "_g"], columns="_cat", values="USUBJID", aggfunc="count", fill_value=0)
    order = _dose_levels(adam["ADSL"]) if "ADSL" in adam and "TRT01A" in adam["ADSL"] else sorted(worst["TRT01A"].unique())
    return tab.reindex(sorted(tab.index, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])))


PLOTS = (plot_swimmer, plot_km, plot_pk, plot_cd7, plot_ae)


def draw_all(adam: dict) -> list[Plot]:
    """Every plot of the report; one that cannot be drawn from this study's data is a note.
    matplotlib's settings change only inside (``rc_context``): a notebook's own stay as they are."""
    import matplotlib

    out = []
    for fn in PLOTS:
        try:
            with matplotlib.rc_context(RC):
                out.append(fn(adam))
        except (KeyError, ValueError, TypeError, IndexError) as exc:      # data of an unexpected shape
            name = fn.__name__.removeprefix("plot_")
            out.append(Plot(name, name, note=f"Not drawn: the data has an unexpected shape ({type(exc).__name__}: "
                                               f"{exc})."))
    return out
