"""report.html (issue #16 item 4): KPIs first, then figures, tables that fit the page, the full key
list collapsed, relative file links, every metric linked to its docs/metrics.md definition; the
compare directory's index report; and (slow, --runslow) the page rendered in headless Chromium."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim.config import load_config
from cluster_sim.experiment import HEADLINE_KEYS, compare, simulate
from cluster_sim.report import html_report
from cluster_sim.report.html import KPI_EXTRA, format_value
from cluster_sim.report.metric_links import INDEX_FILE, MetricIndex, name_regex, parse_metrics_doc

REPO = Path(__file__).resolve().parents[2]
DEMO_SHORT = {"duration": "10min", "scaling.cards": [32, 64], "scaling.topologies": []}
PNG = b"\x89PNG\r\n\x1a\n"


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], []

    def ancestors(self):
        p = self.parent
        while p is not None:
            yield p
            p = p.parent

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


class Tree(HTMLParser):
    VOID = {"meta", "img", "br", "wbr", "hr", "link", "input"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.order: list[Node] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        self.order.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        assert n is not None, f"</{tag}> closes nothing"
        self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)

    def find(self, tag=None, **attrs):
        return [n for n in self.order if (tag is None or n.tag == tag)
                and all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    res = simulate(load_config(REPO / "workloads" / "demo.yaml", overrides=DEMO_SHORT))
    out = tmp_path_factory.mktemp("report") / "demo"
    res.save(out)
    return res, out


@pytest.fixture(scope="module")
def page(demo_run):
    return Tree((demo_run[1] / "report.html").read_text(encoding="utf-8"))


def test_kpis_come_first_then_the_figures(page):
    kpis = page.find("section", id="kpis")
    assert len(kpis) == 1
    first_img = page.find("img")[0]
    assert page.order.index(kpis[0]) < page.order.index(first_img)
    figs = page.find("section", id="figures")[0]
    first_table = page.find("table")[0]
    assert page.order.index(figs) < page.order.index(first_table)  # tables after the figures


def test_kpi_cards_are_the_runs_headline_keys_by_engine(demo_run, page):
    res, _ = demo_run
    s = res.summary
    want = [k for k in dict.fromkeys([*HEADLINE_KEYS, *KPI_EXTRA]) if not k.startswith("sim.")
            and isinstance(s.get(k), (int, float)) and math.isfinite(s[k])]
    cards = [n for n in page.find("div") if n.attrs.get("class") == "kpi"]
    got = {}
    for c in cards:
        v = next(x for x in c.children if x.attrs.get("class") == "v").all_text()
        k = next(x for x in c.children if x.attrs.get("class") == "k").all_text()
        got[k] = v
    assert list(got) == [k for g in ("training.", "inference.", "pool.", "cost") for k in want
                         if k.startswith(g) or (g == "training." and k.startswith(("utilization.", "fragmentation.")))
                         or (g == "cost" and k.startswith("energy"))]
    assert {k: format_value(k, s[k]) for k in want} == got
    groups = [n.all_text() for n in page.find("h3") if page.find("section", id="kpis")[0] in n.ancestors()]
    assert groups == ["Training", "Serving", "Cost and energy"]
    assert {"training.mfu", "inference.ttft_s.p99", "inference.slo_attainment", "cost_usd", "energy_kwh"} <= set(got)


def test_a_headline_key_of_another_producer_is_a_card_too():
    from cluster_sim.report.html import kpi_groups

    s = {"training.mfu": 0.4, "stragglers.replacements": 3, "cost_usd": 2.0, "sim.events": 9, "inference.x": None}
    assert kpi_groups(s, ["training.mfu", "stragglers.replacements", "cost_usd", "sim.events", "inference.x"]) == [
        ("Training", ["training.mfu"]), ("Cost and energy", ["cost_usd"]), ("Other", ["stragglers.replacements"])]


def test_full_key_list_is_collapsed_and_complete(demo_run, page):
    res, _ = demo_run
    details = page.find("details", id="all-keys")
    assert len(details) == 1 and "open" not in details[0].attrs
    rows = [n for n in details[0].iter() if n.tag == "tr"]
    keys = [r.children[0].all_text() for r in rows if r.children and r.children[0].tag == "td"]
    flat = [k for k, v in res.summary.items() if not isinstance(v, dict)]
    assert keys[:len(flat)] == flat
    # no metric/value table outside it
    for t in page.find("table"):
        heads = [n.all_text() for n in t.iter() if n.tag == "th"]
        if heads == ["metric", "value"]:
            assert details[0] in t.ancestors()


def test_every_table_scrolls_and_the_css_makes_it_fit(page, demo_run):
    tables = page.find("table")
    assert len(tables) >= 6
    for t in tables:
        assert t.parent.tag == "div" and t.parent.attrs.get("class") == "table-wrap"
    css = page.find("style")[0].all_text().replace(" ", "")
    assert ".table-wrap{max-width:100%;overflow-x:auto" in css and "max-width:1200px" in css
    assert "figureimg{max-width:100%" in css.replace(" ", "")


def test_images_are_embedded_pngs_and_no_url_leaves_the_page(page, demo_run):
    _, out = demo_run
    imgs = page.find("img")
    assert len(imgs) == len(list((out / "plots").glob("*.png"))) >= 6
    for img in imgs:
        src = img.attrs["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    ids = {n.attrs["id"] for n in page.order if "id" in n.attrs}
    hrefs = [n.attrs["href"] for n in page.order if "href" in n.attrs]
    assert hrefs
    for h in hrefs:
        assert not re.match(r"^[a-z]+:|^//", h), h  # no http:, file:, //host
        if h.startswith("#"):
            assert h[1:] in ids, h
        else:
            assert (out / h).is_file(), h  # relative link to a file of the run
    for n in page.order:
        assert not any(k in n.attrs for k in ("srcset", "data")) and n.tag not in ("script", "link", "iframe")


def test_links_to_the_runs_parquet_files_and_trace(page, demo_run):
    _, out = demo_run
    files = page.find("h2", id="files")
    assert files
    links = {a.attrs["href"] for a in page.find("a") if not a.attrs["href"].startswith("#")}
    want = {p.name for p in out.glob("*.parquet")} | {"trace.json", "summary.json"}
    assert len(want) >= 8 and want <= links


def test_every_linked_metric_has_an_entry_in_docs_metrics_md(page):
    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    entries = parse_metrics_doc(doc)
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", doc, flags=re.M)}
    defs = {n.attrs["id"]: n for n in page.find("dt")}
    linked = [(a.all_text(), a.attrs["href"][1:]) for a in page.find("a", class_="metric")]
    assert len(linked) > 100
    for label, ref in linked:
        e = entries[int(ref.removeprefix("def-"))]
        assert e["anchor"] in headings
        rxs = [re.compile(name_regex(n)) for n in e["names"]]
        # the label is the key, or a per-service column (inference.<metric>) or a per-service key
        # (inference.<service>.<metric>), which the serving table defines once
        cands = [label, f"inference.{label}"]
        if label.startswith("inference.") and label.count(".") >= 2:
            cands.append("inference." + label.split(".", 2)[2])
        assert any(rx.fullmatch(c) for rx in rxs for c in cands), (label, e["names"])
        assert ref in defs and defs[ref].all_text() == ", ".join(e["names"])


def test_headline_keys_are_all_documented(demo_run):
    """Every headline key of the demo has a definition in docs/metrics.md (so it is linked)."""
    idx = MetricIndex(parse_metrics_doc((REPO / "docs" / "metrics.md").read_text(encoding="utf-8")))
    res, _ = demo_run
    missing = [k for k in res.summary if k not in ("sources", "notes") and idx.lookup(k) is None]
    assert missing == []


def test_the_shipped_metric_index_is_docs_metrics_md():
    doc = parse_metrics_doc((REPO / "docs" / "metrics.md").read_text(encoding="utf-8"))
    assert json.loads(INDEX_FILE.read_text(encoding="utf-8")) == doc, (
        "run: python -m cluster_sim.report.metric_links docs/metrics.md")


@pytest.mark.parametrize("name, yes, no", [
    ("training.jct_s.mean/p50/p90/p99", ["training.jct_s.p99", "training.jct_s.mean"], ["training.jct_s.p95"]),
    ("pool.utilization.{allocated,busy}.<type>", ["pool.utilization.busy.h100-sxm"],
     ["pool.utilization.idle.h100-sxm", "pool.utilization.busy"]),
    ("training.job.<name>.*", ["training.job.llama3-70b.mfu"], ["training.jobs.mfu"]),
    ("inference.ttft_s.p50|p99", ["inference.ttft_s.p50"], ["inference.ttft_s.p90"]),
])
def test_documented_names_are_patterns(name, yes, no):
    rx = re.compile(name_regex(name))
    assert all(rx.fullmatch(k) for k in yes) and not any(rx.fullmatch(k) for k in no)


def test_per_service_table_is_the_summarys_per_service_keys(demo_run, page):
    res, _ = demo_run
    df = html_report.service_table(res.tables["services"], res.summary)
    assert df["service"].tolist() == ["chat"]
    for m in html_report.SERVICE_METRICS:
        assert df.loc[0, m] == res.summary[f"inference.chat.{m}"]
    h2 = [n.all_text() for n in page.find("h2")]
    assert {"Per service", "Policies", "Step-time breakdown"} <= set(h2)


def test_policy_table_names_each_decision(demo_run):
    cfg = demo_run[0].config.model_dump(mode="json")["policy"]
    df = html_report.policy_table(cfg).set_index("policy")
    assert df.loc["policy.training.placement", "name"] == cfg["training"]["placement"]["name"]
    assert df.loc["policy.pool", "name"] == cfg["pool"]["name"]
    assert json.loads(df.loc["policy.serving.batching", "parameters"]) == cfg["serving"]["batching"]


def test_compare_directory_gets_an_index_report(tmp_path):
    out = tmp_path / "cmp"
    df = compare(REPO / "workloads" / "serving_latency_tiers.yaml", "policy.serving.routing",
                 ["round_robin", "least_loaded"], seeds=[0, 1], overrides={"duration": "2s"}, out_dir=out)
    page = Tree((out / "report.html").read_text(encoding="utf-8"))
    table = page.find("section", id="tables")[0]
    rows = [n for n in table.iter() if n.tag == "tr" and n.children and n.children[0].tag == "td"]
    assert len(rows) == len(df) == 4
    runs = [r.children[0].children[0].attrs["href"] for r in rows]
    assert runs == [f"{v}/seed-{s}/report.html" for v in ("round_robin", "least_loaded") for s in (0, 1)]
    assert all((out / r).is_file() for r in runs)
    heads = [n.all_text() for n in table.iter() if n.tag == "th"]
    assert heads[:2] == ["policy.serving.routing", "seed"] and "inference.ttft_s.p99" in heads
    cells = [[c.all_text() for c in r.children] for r in rows]
    i = heads.index("inference.ttft_s.p99")
    assert [c[i] for c in cells] == [format_value("inference.ttft_s.p99", v) for v in df["inference.ttft_s.p99"]]
    imgs = page.find("img")
    assert len(imgs) == 1 and base64.b64decode(imgs[0].attrs["src"].split(",", 1)[1]) == \
        (out / "plots" / "compare.png").read_bytes()
    assert page.find("details", id="all-keys")  # every column, collapsed
    assert "report.html" in json.loads((out / ".cluster_sim_run").read_text())["files"]


def test_write_sweep_report_api(tmp_path):
    plot = tmp_path / "plots" / "m.png"
    plot.parent.mkdir()
    plot.write_bytes(PNG + b"fake")
    table = pd.DataFrame({"a": [1, 2], "seed": [0, 0], "training.mfu": [0.4, 0.5], "other": [1.0, 2.0]})
    p = html_report.write_sweep_report(tmp_path, table, ["plots/m.png"], factors=["a"], headline=["training.mfu"],
                                       runs=["r1", "r2"], links={"results.parquet": "results.parquet"})
    tree = Tree(p.read_text(encoding="utf-8"))
    main = tree.find("section", id="tables")[0]
    assert [n.all_text() for n in main.iter() if n.tag == "th"] == ["a", "seed", "training.mfu"]
    assert [n.all_text() for n in main.iter() if n.tag == "td"] == ["1", "0", "40.0%", "2", "0", "50.0%"]
    assert [n.all_text() for n in tree.find("details", id="all-keys")[0].iter() if n.tag == "th"] == list(table)
    with pytest.raises(ValueError, match="runs: 1 paths for 2 rows"):
        html_report.write_sweep_report(tmp_path, table, runs=["x"])


# ---- rendered in a real browser (slow, opt-in) ------------------------------------------------
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    pytest.skip("no headless Chromium on PATH (Debian: apt-get install chromium)")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    exe = _chromium()
    _, out = demo_run
    url = (out / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600"]
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True)
    tree = Tree(dom.stdout)
    assert len([n for n in tree.find("div") if n.attrs.get("class") == "kpi"]) >= 10
    assert len(tree.find("img")) >= 6 and len(tree.find("table")) >= 6
    shot = tmp_path / "shot.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    from PIL import Image

    im = Image.open(shot).convert("L")
    assert im.size == (1280, 1600)
    top = im.crop((0, 0, 1280, 800))
    assert sum(1 for c in top.histogram() if c) > 50  # text, cards and a figure drawn, not a blank page
