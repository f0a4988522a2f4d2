"""Draw a topology as an aggregated block diagram (PNG), readable at 1,000-100,000 cards.

One box per group of scale-up domains (per leaf, rail group or pod, merged further when
there are too many), coloured by card type; above it the switch group it hangs from; above
that each site's top switch tier; DCI links between sites labelled with distance, capacity
and convergence. Uses matplotlib's object API (no pyplot global state).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from ..topology import Topology
from ..units import fmt_bandwidth, fmt_duration
from .files import write_bytes_atomic

__all__ = ["plot_topology"]

MAX_BLOCKS = 16  # boxes per drawing before groups are merged


@dataclass(frozen=True)
class _Block:
    site: int
    cards: int
    domains: int
    system: str
    card_type: str
    switch_label: str
    uplink_Bps: float


def _site_blocks(t: Topology, site: int, quota: int) -> list[_Block]:
    sel = np.flatnonzero(t.dc == site)
    leaf, node, pod = t.leaf[sel], t.node[sel], t.pod[sel]
    has_net = bool((leaf >= 0).any())
    rail = has_net and np.unique(node * (int(leaf.max()) + 1) + leaf).size > np.unique(node).size
    n_dom = np.unique(t.domain[sel]).size
    n_pod = np.unique(pod).size
    if not has_net or (n_dom <= quota and (rail or np.unique(leaf).size > quota)):
        key, what = t.domain[sel], "domain"  # big domains (NVL72, supernodes): one box each
    elif rail:
        key, what = pod, "SU"
    elif np.unique(leaf).size <= quota or n_pod < 2:
        key, what = leaf, "leaf"
    else:
        key, what = pod, "pod"
    sys_idx = t.system_idx[sel]
    groups = np.unique(key)
    # merge consecutive groups of one system into buckets when there are too many
    bucket = np.zeros(groups.size, dtype=np.int64)
    if groups.size > quota:
        first = np.searchsorted(key, groups) if np.all(np.diff(key) >= 0) else np.arange(groups.size)
        g_sys = sys_idx[np.minimum(first, sel.size - 1)]
        next_id = 0
        _, first_seen = np.unique(g_sys, return_index=True)
        for s in g_sys[np.sort(first_seen)]:
            idx = np.flatnonzero(g_sys == s)
            allowed = max(1, round(quota * idx.size / groups.size))
            size = -(-idx.size // allowed)
            bucket[idx] = next_id + np.arange(idx.size) // size
            next_id = int(bucket[idx].max()) + 1
    else:
        bucket = np.arange(groups.size)
    card_bucket = bucket[np.searchsorted(groups, key)]
    share = _uplink_share(t)
    blocks = []
    for b in np.unique(card_bucket):
        cards = sel[card_bucket == b]
        s = int(np.bincount(t.system_idx[cards]).argmax())
        members = groups[bucket == b]
        sysname = t.cards.system_names[s]
        span = f"{members[0]}" if members.size == 1 else f"{members[0]}-{members[-1]}"
        leaves = np.unique(t.leaf[cards])
        leaves = leaves[leaves >= 0]
        if not leaves.size:
            label = ""
        elif what == "leaf":
            label = f"leaf {span}" if members.size == 1 else f"leaves {span}"
        elif what == "domain":
            label = f"leaf {leaves[0]}" if leaves.size == 1 else f"leaves {leaves[0]}-{leaves[-1]}"
        else:
            kind = "rail leaves" if what == "SU" else "leaves"
            label = f"{what} {span}\n{leaves.size} {kind}"
        up = float(share[cards].sum())
        blocks.append(_Block(site, int(cards.size), int(np.unique(t.domain[cards]).size), sysname,
                             t.card_types[int(t.card_type_idx[cards[0]])], label, up))
    return blocks


def _uplink_share(t: Topology) -> np.ndarray:
    """Each card's share of its leaf's uplink capacity (bytes/s), so a box's uplink is the
    sum over its cards even when leaves are shared between boxes. Leaves are named
    ``leaf:<local>`` or ``dc<i>/leaf:<local>``; global id = the site's first leaf + local."""
    base = {}
    for s in range(len(t.sites)):
        leaves = t.leaf[(t.dc == s) & (t.leaf >= 0)]
        base[s] = int(leaves.min()) if leaves.size else 0
    n_leaf = int(t.leaf.max()) + 1
    up = np.zeros(max(n_leaf, 1))
    e = t.edges
    for u, lv, bw in zip(e.u, e.level, e.bandwidth_Bps.tolist(), strict=True):
        if lv == "leaf-spine":
            site, _, local = str(u).rpartition("/")
            up[base[int(site[2:]) if site else 0] + int(local.split(":")[1])] = bw
    has = t.leaf >= 0
    per_leaf = np.bincount(t.leaf[has], minlength=up.size)
    out = np.zeros(t.n_cards)
    out[has] = up[t.leaf[has]] / np.maximum(per_leaf[t.leaf[has]], 1)
    return out


def plot_topology(topo: Topology, path: str | Path, *, dpi: int = 110) -> Path:
    """Write an aggregated drawing of ``topo`` to ``path`` (PNG, atomically); returns the path."""
    path = Path(path)
    n_sites = len(topo.sites)
    quota = max(4, MAX_BLOCKS // n_sites)
    blocks = [b for s in range(n_sites) for b in _site_blocks(topo, s, quota)]
    colours = {ct: f"C{i % 10}" for i, ct in enumerate(topo.card_types)}
    width = max(8.0, 1.15 * len(blocks) + 1.5 * (n_sites - 1) + 2)
    fig = Figure(figsize=(min(width, 20.0), 6.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    xs, x = [], 0.0
    for i, b in enumerate(blocks):
        if i and b.site != blocks[i - 1].site:
            x += 1.5
        xs.append(x)
        x += 1.15
    fs = 7 if len(blocks) > 16 else 8
    has_net = [s.top_switch is not None for s in topo.sites]
    for b, bx in zip(blocks, xs, strict=True):
        _box(ax, bx, 0.0, 1.0, 0.9, colours[b.card_type], fs,
             f"{b.domains} x {b.cards // max(b.domains, 1)}\n{b.system}\n{b.cards} cards")
        if has_net[b.site] and b.switch_label:
            _box(ax, bx, 1.6, 1.0, 0.6, "#dddddd", fs, b.switch_label)
            ax.plot([bx + 0.5, bx + 0.5], [0.9, 1.6], color="#555555", lw=1.2, zorder=1)
    tops = {}
    for s, site in enumerate(topo.sites):
        sx = [bx for b, bx in zip(blocks, xs, strict=True) if b.site == s]
        if not has_net[s]:
            continue
        left, right = min(sx), max(sx) + 1.0
        osub = ", ".join(f"{k} {v:g}:1" for k, v in site.oversubscription.items())
        label = f"{' / '.join(site.switch_levels[1:]) or 'leaf'} ({site.fabric.name}, {osub})"
        _box(ax, left, 3.0, right - left, 0.55, "#bbbbbb", fs + 1, label)
        tops[s] = (left, right)
        for b, bx in zip(blocks, xs, strict=True):
            if b.site == s and b.switch_label:
                lw = 0.8 + 3.0 * b.uplink_Bps / max(1.0, max(bb.uplink_Bps for bb in blocks))
                ax.plot([bx + 0.5, bx + 0.5], [2.2, 3.0], color="#333333", lw=lw, zorder=1)
    for d in topo.dci:
        if d.a in tops and d.b in tops:
            xa, xb = (tops[d.a][0] + tops[d.a][1]) / 2, (tops[d.b][0] + tops[d.b][1]) / 2
            ax.plot([xa, xa, xb, xb], [3.55, 4.2, 4.2, 3.55], color="crimson", lw=2.5, zorder=1)
            ax.text((xa + xb) / 2, 4.3, f"DCI {d.distance_m / 1e3:g} km, {fmt_bandwidth(d.capacity_Bps, bits=False)} "
                    f"({d.convergence_ratio:g}:1), {fmt_duration(d.latency_s)} one way",
                    ha="center", va="bottom", fontsize=fs + 1, color="crimson")
    for s in range(n_sites):
        sx = [bx for b, bx in zip(blocks, xs, strict=True) if b.site == s]
        if n_sites > 1:
            ax.text((min(sx) + max(sx) + 1) / 2, -0.35, f"site {s}", ha="center", va="top", fontsize=fs + 1)
    ax.set_xlim(-0.3, x + 0.15)
    ax.set_ylim(-0.7, 4.9)
    counts = ", ".join(f"{int(v.size)} {k}" for k, v in topo.cards_by_type().items())
    ax.set_title(f"{topo.name}: {topo.n_cards} cards ({counts})\nbisection "
                 f"{fmt_bandwidth(topo.bisection_Bps, bits=False)} per direction", fontsize=fs + 3)
    handles = [Patch(color=c, label=ct) for ct, c in colours.items()]
    ax.legend(handles=handles, loc="upper left", fontsize=fs, frameon=False, title="card type",
              title_fontsize=fs)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return write_bytes_atomic(path, buf.getvalue())


def _box(ax, x: float, y: float, w: float, h: float, colour: str, fs: int, text: str) -> None:  # type: ignore[no-untyped-def]
    ax.add_patch(FancyBboxPatch((x + 0.04, y), w - 0.08, h, boxstyle="round,pad=0.02", fc=colour,
                                ec="#333333", lw=0.8, alpha=0.85, zorder=2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs, zorder=3)
