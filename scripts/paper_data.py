"""Fig. 1 (items by department and type) and the data table, from the prepared items."""

from collections import Counter

from kmedqa.io import read_json
from kmedqa.items import read_items
from kmedqa.paper.figures import data_distribution, figure_stem
from kmedqa.paper.tables import Table
from kmedqa.workflow import run_script


def main(smk):
    datasets = {n: read_items(f) for n, f in zip(smk.params.names, smk.input.qa, strict=True)}
    data_distribution(datasets, figure_stem(smk.output.data_distribution))
    t = Table(
        "data",
        "Datasets: items by department and question type, and split sizes",
        ["dataset", "department", "type", "items"],
        align="lllr",
    )
    for name, items in datasets.items():
        for (dom, qt), n in sorted(
            Counter((i["domain"], i["q_type"]) for i in items).items(),
            key=lambda kv: (str(kv[0][0]), str(kv[0][1])),
        ):
            t.rows.append([name, dom or "–", qt or "–", n])
    for name, mf in zip(smk.params.names, smk.input.manifests, strict=True):
        totals = read_json(mf)["totals"]
        t.notes.append(
            f"{name}: "
            + ", ".join(f"{k} {v:,}" for k, v in totals.items())
            + " (seeded, stratified split; see the manifest for hashes)."
        )
    t.write(*smk.output.data)


run_script(snakemake, main)  # noqa: F821
