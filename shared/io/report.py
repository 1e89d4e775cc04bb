"""``EVAL/report.html``: one self-contained page of an evaluation, opened from disk in a browser.

No server and no network at view time: styles, scripts, thumbnails (PNG as data URLs) and the
viewer's volumes (base64 ``uint8``) are all inside the file. The page holds

- the summary table (mean +- std of the score columns) with the card's published numbers
  (``reference_results``) beside ours;
- the per-case table (``cases.csv``), sortable by clicking a column header, failed cases
  flagged (red row, the error shown);
- one overlay thumbnail per case (the axial slice with most reference, else predicted, voxels:
  reference in green, prediction in red);
- an interactive 3-D viewer of image + prediction + reference for a chosen case: three
  orthogonal slice planes on canvases with sliders and overlay toggles.

The viewer is a small canvas viewer written here, not NiiVue: NiiVue needs WebGL2, which a
headless, GPU-less browser (CI) does not reliably offer, and its JavaScript would have to be
fetched from npm at build time. The page's data layout (RAS voxel order, uint8 image,
label maps) is what NiiVue takes, so it can replace the canvas viewer later.

Volumes are in RAS voxel order (:class:`medcl.io.nifti.Canonical`); axial views are drawn in
the radiological convention (patient right on the left of the screen, anterior up).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_text
from .errors import InputFileError

__all__ = ["write_report"]


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _best_slice(arrays: dict[str, np.ndarray]) -> int:
    for name in ("truth", "pred"):
        if name in arrays and arrays[name].any():
            return int(np.argmax(arrays[name].reshape(-1, arrays[name].shape[2]).sum(0)))
    return arrays["image"].shape[2] // 2


def _axial(a: np.ndarray, z: int) -> np.ndarray:
    """Slice ``z`` of a RAS ``(X, Y, Z)`` array as a screen image (rows = -y, cols = -x)."""
    return a[::-1, ::-1, z].T


def thumbnail(arrays: dict[str, np.ndarray]) -> str:
    """An overlay thumbnail (PNG data URL) of a case's image, prediction and reference."""
    z = _best_slice(arrays)
    img = _axial(arrays["image"], z).astype(np.float32)
    rgb = np.repeat(img[..., None], 3, axis=2)
    if "pred" in arrays:
        p = _axial(arrays["pred"], z) > 0
        rgb[p] = 0.5 * rgb[p] + 0.5 * np.array([255, 40, 40])
    if "truth" in arrays:
        t = _axial(arrays["truth"], z) > 0
        edge = t & ~(np.roll(t, 1, 0) & np.roll(t, -1, 0) & np.roll(t, 1, 1) & np.roll(t, -1, 1))
        rgb[edge] = [40, 255, 40]
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    scale = max(1, 128 // max(rgb.shape[:2]))
    return _png(np.kron(rgb, np.ones((scale, scale, 1), np.uint8)))


def _load(npz: Path) -> dict[str, np.ndarray]:
    with np.load(npz) as f:
        return {k: f[k] for k in f.files}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.uint8).tobytes()).decode("ascii")


def _table_html(df: Any, *, table_id: str, failed: bool = False, thumbs: dict | None = None
                ) -> str:
    cols = list(df.columns)
    head = "".join(f"<th data-col='{i}'>{html.escape(str(c))}</th>" for i, c in enumerate(cols))
    if thumbs is not None:
        head += "<th>overlay</th>"
    body = []
    for row in df.to_dict("records"):
        bad = failed and str(row.get("status", "")) == "failed"
        cells = []
        for c in cols:
            v = row[c]
            text = f"{v:.4g}" if isinstance(v, float) and np.isfinite(v) else (
                "" if isinstance(v, float) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        if thumbs is not None:
            src = thumbs.get(str(row.get("case_id")))
            cells.append(f"<td><img class='thumb' alt='overlay' src='{src}'></td>" if src
                         else "<td></td>")
        body.append(f"<tr class='{'failed' if bad else 'ok'}'>{''.join(cells)}</tr>")
    return (f"<table id='{table_id}' class='sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}
th{background:#f0f0f0;cursor:pointer}
tr.failed td{background:#fdd;color:#900}
img.thumb{height:64px;image-rendering:pixelated}
#viewer canvas{border:1px solid #888;image-rendering:pixelated;margin-right:6px;background:#000}
.note{color:#666;font-size:12px}
"""

_JS = r"""
(function(){
  'use strict';
  function sortTable(table, col){
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = table.getAttribute('data-sort') !== col + ':asc';
    rows.sort(function(a, b){
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    table.setAttribute('data-sort', col + (asc ? ':asc' : ':desc'));
  }
  document.querySelectorAll('table.sortable th[data-col]').forEach(function(th){
    th.addEventListener('click', function(){
      sortTable(th.closest('table'), parseInt(th.getAttribute('data-col'), 10));
    });
  });
  var data = JSON.parse(document.getElementById('volumes').textContent);
  var ids = Object.keys(data);
  var viewer = document.getElementById('viewer');
  if (!ids.length) { viewer.setAttribute('data-ready', 'empty'); return; }
  function decode(s){
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  var cur = null;
  var select = document.getElementById('case');
  ids.forEach(function(id){
    var o = document.createElement('option'); o.value = id; o.textContent = id;
    select.appendChild(o);
  });
  function load(id){
    var d = data[id];
    cur = {id: id, shape: d.shape, image: decode(d.image),
           pred: d.pred ? decode(d.pred) : null, truth: d.truth ? decode(d.truth) : null,
           pos: d.start.slice()};
    ['x', 'y', 'z'].forEach(function(a, k){
      var s = document.getElementById('s' + a);
      s.max = d.shape[k] - 1; s.value = d.start[k];
    });
    draw();
  }
  function at(v, x, y, z){ var s = cur.shape; return v[x * s[1] * s[2] + y * s[2] + z]; }
  // plane: 'z' axial (cols -x, rows -y), 'y' coronal (cols -x, rows -z), 'x' sagittal (y, -z)
  function draw(){
    var scale = parseInt(viewer.getAttribute('data-scale'), 10);
    var showP = document.getElementById('showpred').checked;
    var showT = document.getElementById('showtruth').checked;
    var s = cur.shape;
    var planes = {z: [s[0], s[1]], y: [s[0], s[2]], x: [s[1], s[2]]};
    Object.keys(planes).forEach(function(p){
      var w = planes[p][0], h = planes[p][1];
      var c = document.getElementById('c' + p);
      c.width = w * scale; c.height = h * scale;
      var ctx = c.getContext('2d');
      var img = ctx.createImageData(w, h);
      for (var r = 0; r < h; r++) for (var q = 0; q < w; q++){
        var x, y, z;
        if (p === 'z'){ x = w - 1 - q; y = h - 1 - r; z = cur.pos[2]; }
        else if (p === 'y'){ x = w - 1 - q; y = cur.pos[1]; z = h - 1 - r; }
        else { x = cur.pos[0]; y = q; z = h - 1 - r; }
        var g = at(cur.image, x, y, z), R = g, G = g, B = g;
        if (showP && cur.pred && at(cur.pred, x, y, z)) { R = 255; G = g >> 2; B = g >> 2; }
        if (showT && cur.truth && at(cur.truth, x, y, z)) { G = Math.max(G, 200); }
        var k = 4 * (r * w + q);
        img.data[k] = R; img.data[k + 1] = G; img.data[k + 2] = B; img.data[k + 3] = 255;
      }
      var off = document.createElement('canvas'); off.width = w; off.height = h;
      off.getContext('2d').putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, 0, 0, w * scale, h * scale);
    });
    document.getElementById('where').textContent =
      cur.id + ' voxel (' + cur.pos.join(', ') + ') of ' + s.join('x');
    viewer.setAttribute('data-ready', cur.id);
  }
  ['x', 'y', 'z'].forEach(function(a, k){
    document.getElementById('s' + a).addEventListener('input', function(e){
      cur.pos[k] = parseInt(e.target.value, 10); draw();
    });
  });
  ['showpred', 'showtruth'].forEach(function(n){
    document.getElementById(n).addEventListener('change', draw);
  });
  select.addEventListener('change', function(){ load(select.value); });
  load(viewer.getAttribute('data-case') || ids[0]);
})();
"""


def write_report(folder: str | os.PathLike[str], *, case: str | None = None,
                 viewer_cases: int = 4, scale: int = 3) -> Path:
    """(Re)build ``folder/report.html`` from an evaluation folder and return its path.

    Parameters
    ----------
    folder : path
        An evaluation folder (``cases.csv``, ``config.yaml``, ``cases/*.npz``).
    case : str, optional
        The case the viewer opens on (default: the first case scored ok).
    viewer_cases : int
        How many cases' volumes the page embeds for the viewer (the chosen one first).
    scale : int
        Screen pixels per voxel in the viewer.
    """
    import pandas as pd
    import yaml

    root = Path(folder)
    csv = root / "cases.csv"
    if not csv.is_file():
        raise InputFileError("no cases.csv: not an evaluation folder", path=root,
                             fix="pass the --out folder of `medcl evaluate`")
    table = pd.read_csv(csv, dtype={"case_id": str, "error": str}, keep_default_na=False,
                        na_values=[""])
    table["error"] = table["error"].fillna("")
    config: dict[str, Any] = {}
    if (root / "config.yaml").is_file():
        config = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8")) or {}
        config = config.get("config", config)  # RunFolder.write_config nests it
    summary = pd.read_csv(root / "summary.csv") if (root / "summary.csv").is_file() else None
    refs: list[dict] = []
    if config.get("card"):
        try:
            from .cards import get_card

            refs = list(get_card(str(config["card"])).reference_results or [])
        except Exception:  # a card not installed here: the page is still built
            refs = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for cid in dict.fromkeys(table.case_id.astype(str)):
        npz = root / "cases" / f"{cid}.npz"
        if npz.is_file():
            arrays[cid] = _load(npz)
    thumbs = {cid: thumbnail(a) for cid, a in arrays.items()}
    ok_ids = [c for c in dict.fromkeys(table.loc[table.status == "ok", "case_id"].astype(str))
              if c in arrays]
    if case is not None and case not in arrays:
        raise InputFileError(f"case {case!r} has no saved volumes", path=root / "cases",
                             fix=f"choose one of {', '.join(list(arrays)[:5]) or 'none'}")
    chosen = [case] if case else []
    chosen += [c for c in ok_ids if c not in chosen][: max(0, viewer_cases - len(chosen))]
    volumes = {}
    for cid in chosen:
        a = arrays[cid]
        start = [int(v) // 2 for v in a["image"].shape]
        mask = a.get("pred") if a.get("pred") is not None and a["pred"].any() else a.get("truth")
        if mask is not None and mask.any():
            start = [int(round(float(v))) for v in np.argwhere(mask).mean(0)]
        volumes[cid] = {"shape": [int(v) for v in a["image"].shape], "start": start,
                        **{k: _b64(a[k]) for k in ("image", "pred", "truth") if k in a}}
    title = f"medcl evaluation: {config.get('app', '?')} on {config.get('card', '?')}"
    failed = sorted(table.loc[table.status == "failed", "case_id"].astype(str).unique())
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>model: <code>{html.escape(str(config.get('model')))}</code>; split "
             f"{html.escape(str(config.get('split', 'all')))}; "
             f"{table.case_id.nunique()} cases, {len(failed)} failed"
             + (f" ({html.escape(', '.join(failed[:10]))})" if failed else "") + "</p>",
             "<h2>Summary</h2>"]
    if summary is not None:
        parts.append(_table_html(summary, table_id="summary"))
    parts.append("<h3>Published numbers (from the data card; other splits and "
                 "pre-processing: compare with care)</h3>")
    if refs:
        parts.append(_table_html(pd.DataFrame(refs), table_id="published"))
    else:
        parts.append("<p class='note'>The card records no checked published numbers.</p>")
    parts += ["<h2>Cases</h2>", "<p class='note'>Click a column header to sort.</p>",
              _table_html(table, table_id="cases", failed=True, thumbs=thumbs),
              "<h2>Viewer</h2>",
              "<p class='note'>Prediction red, reference green; axial (radiological: patient "
              "right on the left), coronal, sagittal.</p>",
              f"<div id='viewer' data-scale='{int(scale)}' data-case='"
              f"{html.escape(chosen[0]) if chosen else ''}'>"
              "<label>case <select id='case'></select></label> "
              "<label><input type='checkbox' id='showpred' checked> prediction</label> "
              "<label><input type='checkbox' id='showtruth' checked> reference</label><br>"
              "<canvas id='cz'></canvas><canvas id='cy'></canvas><canvas id='cx'></canvas><br>"
              "<label>x <input type='range' id='sx' min='0' value='0'></label> "
              "<label>y <input type='range' id='sy' min='0' value='0'></label> "
              "<label>z <input type='range' id='sz' min='0' value='0'></label> "
              "<span id='where'></span></div>"]
    volumes_json = json.dumps(volumes).replace("</", "<\\/")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
            f"<style>{_CSS}</style></head><body>"
            + "\n".join(parts)
            + f"<script type='application/json' id='volumes'>{volumes_json}</script>"
            + f"<script>{_JS}</script></body></html>\n")
    return write_text(root / "report.html", page)
