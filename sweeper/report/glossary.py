"""What every fitted and derived quantity in a report means, its formula, and where it comes from.

Sources are sections of the reference study (reference/native-multimodal-scaling-laws.txt)
and of Hoffmann et al. 2022 (Chinchilla), which the study follows for the closed forms.
"""

from __future__ import annotations

# name -> (formula, meaning, source)
GLOSSARY: dict[str, tuple[str, str, str]] = {
    "E": (
        "L = E + A/N^α + B/D^β",
        "irreducible loss: the loss of an infinite model on infinite data",
        "reference Eq 1 (Section 3), fitted as in Appendix C",
    ),
    "A": ("L = E + A/N^α + B/D^β", "scale of the loss term that shrinks with parameters N", "reference Eq 1"),
    "B": (
        "L = E + A/N^α + B/D^β",
        "scale of the loss term that shrinks with training tokens D",
        "reference Eq 1",
    ),
    "alpha": ("L = E + A/N^α + B/D^β", "how fast loss falls with parameters N", "reference Eq 1, Table 2"),
    "beta": (
        "L = E + A/N^α + B/D^β",
        "how fast loss falls with training tokens D",
        "reference Eq 1, Table 2",
    ),
    "a": (
        "N_opt = K_a C^a, a = β/(α+β)",
        "exponent of the compute-optimal model size",
        "reference Table 2, Appendix C (closed form from Hoffmann et al. Eq 4)",
    ),
    "b": (
        "D_opt = K_b C^b, b = α/(α+β)",
        "exponent of the compute-optimal number of tokens",
        "reference Table 2, Appendix C",
    ),
    "G": (
        "G = (αA / (βB))^(1/(α+β))",
        "the constant of the closed-form optimum: N_opt = G (C/k)^a, "
        "D_opt = G^-1 (C/k)^b, with C = kND (k = 6, or the runs' measured C/(ND))",
        "Hoffmann et al. 2022 Eq 4; reference Appendix C",
    ),
    "K_a": ("K_a = G k^-a", "prefactor of N_opt = K_a C^a", "reference Appendix C (N = K_a C^a)"),
    "K_b": ("K_b = G^-1 k^-b", "prefactor of D_opt = K_b C^b", "reference Appendix C"),
    "d": (
        "d = b/a; D_opt ∝ N_opt^d",
        "how tokens scale with model size along the compute-optimal frontier",
        "reference Table 9 (d), Appendix C",
    ),
    "K_d": (
        "K_d = K_b K_a^(-b/a); D_opt = K_d N_opt^d",
        "prefactor of tokens against model size on the frontier",
        "reference Appendix C",
    ),
    "n": (
        "n = a/b; N_opt ∝ D_opt^n",
        "how model size scales with tokens on the frontier",
        "reference Table 9 (n)",
    ),
    "dn": (
        "dn = b - a; D_opt/N_opt ∝ C^dn",
        "whether tokens per parameter grow (dn > 0) or shrink with compute",
        "reference Table 9 (dn), Figure 22 (D/N ∝ C^-0.053)",
    ),
    "c": (
        "L = K C^c",
        "exponent of the lowest loss reachable at compute C (the loss envelope, Approach 1)",
        "reference Section 3.1, Appendix C.3",
    ),
    "K": ("L = K C^c", "prefactor of the loss envelope", "reference Section 3.1 (L = 29.574 C^-0.0492)"),
    "log_L_opt": (
        "log L(N_opt(C_t), D_opt(C_t))",
        "log of the predicted loss of the compute-optimal model at the target compute C_t (--target-compute)",
        "the law extrapolated, as in reference Appendix C.6",
    ),
}

REGRESSION_NOTE = (
    "X_regression: the same quantity X by the regression route: minimise the fitted law over a "
    "token grid at each compute value and regress log N_opt and log D_opt on log C (reference "
    "Appendix C, Table 9 'Regression' row; it checks the closed form and is the only route for "
    "laws without one, e.g. the sparsity law)"
)


def glossary_rows(names) -> list[tuple[str, str, str, str]]:
    """(name, formula, meaning, source) for the given names that the glossary knows, twins folded in."""
    rows, seen = [], set()
    for name in names:
        base = name.removesuffix("_regression")
        if base in GLOSSARY and base not in seen:
            seen.add(base)
            rows.append((base, *GLOSSARY[base]))
    return rows


def glossary_html() -> str:
    import html

    rows = "".join(
        f"<tr><th>{html.escape(n)}</th><td class=formula>{html.escape(f)}</td><td>{html.escape(m)}</td>"
        f"<td>{html.escape(s)}</td></tr>"
        for n, f, m, s in glossary_rows(GLOSSARY)
    )
    return (
        "<h2 id=glossary>Glossary</h2><table class=glossary><tr><th>name</th><th>formula</th><th>meaning</th>"
        f"<th>source</th></tr>{rows}</table><p>{html.escape(REGRESSION_NOTE)}.</p>"
    )


def glossary_markdown() -> list[str]:
    lines = ["## Glossary", "", "| name | formula | meaning | source |", "|---|---|---|---|"]
    lines += [f"| {n} | {f} | {m} | {s} |" for n, f, m, s in glossary_rows(GLOSSARY)]
    return lines + ["", f"{REGRESSION_NOTE}.", ""]
