"""Interaction logs for ``medcl core rec``: RecBole atomic ``.inter`` files, the ``synth``
generator, and the leave-one-out split of each user's time-ordered sequence.

``.inter`` files (RecBole's atomic format, as MCLRec's released datasets are): tab-separated,
a header of ``name:type`` fields; ``user_id:token``, ``item_id:token`` and ``timestamp:float``
are required, other columns (``rating:float``, ...) are ignored. Each user's interactions are
ordered by timestamp (ties keep the file order). Item tokens become ids ``1..n_items`` in order
of first appearance; 0 is padding.

Split (MCLRec §4.1.3, the usual leave-one-out): for a user's sequence ``s_1 .. s_n`` the last
item is the test target (history ``s_1 .. s_{n-1}``), the second-to-last the validation target,
and every earlier position a training example (prefix ``s_1 .. s_{t-1}`` -> ``s_t``, RecBole's
sequence augmentation). Users with a single interaction cannot be split: they are skipped and
counted. Histories keep their last ``max_len`` items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medcl.io.errors import InputFileError

__all__ = ["REQUIRED_FIELDS", "Interactions", "Sequences", "Split", "SynthSpec", "read_inter",
           "oracle_ranks", "synth_interactions", "to_sequences", "leave_one_out", "pad_left",
           "write_inter"]

REQUIRED_FIELDS = {"user_id": "token", "item_id": "token", "timestamp": "float"}


@dataclass
class Interactions:
    """Rows of an interaction log: user and item tokens (str) and timestamps (float)."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    source: str


def read_inter(path: str | Path) -> Interactions:
    """Read a RecBole ``.inter`` file; a missing field or a bad value raises InputFileError."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError("the interaction file does not exist", path=path,
                             fix="give a RecBole .inter file or --data synth")
    try:
        header = path.open(encoding="utf-8").readline().rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the file ({type(exc).__name__})", path=path,
                             fix="give a UTF-8, tab-separated RecBole .inter file") from exc
    fields: dict[str, tuple[str, str]] = {}
    for column in header:
        name, _, kind = column.partition(":")
        fields[name.strip()] = (column, kind.strip())
    for name, kind in REQUIRED_FIELDS.items():
        if name not in fields:
            raise InputFileError(
                f"the header has no '{name}:{kind}' field (found: {', '.join(header)})",
                path=path, fix="write a tab-separated header with user_id:token, "
                "item_id:token and timestamp:float")
        if fields[name][1] != kind:
            raise InputFileError(f"field '{fields[name][0]}' should be '{name}:{kind}'",
                                 path=path, fix=f"declare it as {name}:{kind}")
    columns = [fields[n][0] for n in REQUIRED_FIELDS]
    try:
        df = pd.read_csv(path, sep="\t", usecols=columns, dtype=str, keep_default_na=False,
                         quoting=3, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputFileError(f"cannot parse the file ({exc})", path=path,
                             fix="check that every row has the header's tab-separated fields"
                             ) from exc
    df.columns = list(REQUIRED_FIELDS)
    for name in REQUIRED_FIELDS:
        empty = np.flatnonzero(df[name].str.strip().to_numpy() == "")
        if len(empty):
            raise InputFileError(f"line {empty[0] + 2} has an empty {name}", path=path,
                                 fix="fill or remove that row")
    ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(ts))
    if len(bad):
        raise InputFileError(f"line {bad[0] + 2} has timestamp {df['timestamp'][bad[0]]!r}, "
                             "not a number", path=path, fix="give numeric timestamps")
    if not len(df):
        raise InputFileError("the file has no interactions", path=path,
                             fix="give a file with rows below the header")
    return Interactions(df["user_id"].str.strip().to_numpy(), df["item_id"].str.strip()
                        .to_numpy(), ts, str(path))


def write_inter(path: str | Path, inter: Interactions) -> Path:
    """Write ``inter`` as a RecBole ``.inter`` file (atomically)."""
    import pandas as pd

    from medcl.io import write_text

    df = pd.DataFrame({"user_id:token": inter.users, "item_id:token": inter.items,
                       "timestamp:float": inter.timestamps})
    return write_text(path, df.to_csv(sep="\t", index=False))


# -- synth -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthSpec:
    """The latent-cluster Markov model of ``--data synth``.

    Items are split into ``n_clusters`` equal clusters; inside each, a fixed random cycle gives
    every item a successor. Each user belongs to one cluster and draws ``min_len..max_len``
    items: the first uniformly from the cluster, then each next item is the successor of the
    previous one with probability ``p_next``, a uniform item of the user's cluster with
    ``p_cluster``, and a uniform item of the whole catalogue otherwise. So the next item is
    known up to noise: ``P(j | prev, c) = p_next [j = succ(prev)] + p_cluster [j in c] / |c|
    + (1 - p_next - p_cluster) / n_items``.
    """

    n_users: int = 1000
    n_items: int = 200
    n_clusters: int = 10
    min_len: int = 5
    max_len: int = 20
    p_next: float = 0.6
    p_cluster: float = 0.3
    seed: int = 0


@dataclass
class SynthTruth:
    """The generator's hidden state: successor of each item id and cluster of each user."""

    successor: np.ndarray  # (n_items + 1,), index by item id
    cluster_of_item: np.ndarray  # (n_items + 1,)
    user_cluster: dict[str, int]
    spec: SynthSpec

    def probabilities(self, users: list[str], last: np.ndarray) -> np.ndarray:
        """True next-item probabilities (B, n_items), column j = item j + 1."""
        s = self.spec
        size = s.n_items // s.n_clusters
        p = np.full((len(users), s.n_items), (1 - s.p_next - s.p_cluster) / s.n_items)
        for r, (u, prev) in enumerate(zip(users, last, strict=True)):
            c = self.user_cluster[u]
            p[r, (self.cluster_of_item[1:] == c)] += s.p_cluster / size
            p[r, self.successor[prev] - 1] += s.p_next
        return p


def oracle_ranks(truth: SynthTruth, seqs: Sequences, users: list[int],
                 inputs: list[list[int]], targets: np.ndarray, seed: int = 0) -> np.ndarray:
    """Ranks (0-based) of the targets under the generator's true next-item probabilities over
    the vocabulary's items, ties broken at random: what a perfect model would score."""
    rng = np.random.default_rng(seed)
    gen = np.array([int(tok[1:]) for tok in seqs.items])  # vocabulary id - 1 -> generator id
    names = [seqs.users[u] for u in users]
    last = np.array([gen[x[-1] - 1] for x in inputs])
    p = truth.probabilities(names, last)[:, gen - 1]
    p = p + rng.uniform(0, 1e-9, p.shape)
    t = p[np.arange(len(targets)), targets - 1]
    return (p > t[:, None]).sum(1)


def synth_interactions(spec: SynthSpec) -> tuple[Interactions, SynthTruth]:
    """Draw an interaction log from :class:`SynthSpec`; item tokens ``i<k>`` for the
    generator's item ``k``, users ``u<n>``; timestamps increase through the log."""
    rng = np.random.default_rng(spec.seed)
    size = spec.n_items // spec.n_clusters
    n_items = size * spec.n_clusters
    spec = SynthSpec(**{**spec.__dict__, "n_items": n_items})
    successor = np.zeros(n_items + 1, dtype=np.int64)
    cluster_of_item = np.zeros(n_items + 1, dtype=np.int64)
    for c in range(spec.n_clusters):
        members = np.arange(1 + c * size, 1 + (c + 1) * size)
        cycle = rng.permutation(members)
        successor[cycle] = np.roll(cycle, -1)
        cluster_of_item[members] = c
    users, items, times, user_cluster = [], [], [], {}
    t = 0.0
    order = rng.permutation(spec.n_users)
    for u in order:
        c = int(rng.integers(spec.n_clusters))
        user_cluster[f"u{u}"] = c
        n = int(rng.integers(spec.min_len, spec.max_len + 1))
        prev = int(rng.integers(1 + c * size, 1 + (c + 1) * size))
        seq = [prev]
        for _ in range(n - 1):
            x = rng.random()
            if x < spec.p_next:
                prev = int(successor[prev])
            elif x < spec.p_next + spec.p_cluster:
                prev = int(rng.integers(1 + c * size, 1 + (c + 1) * size))
            else:
                prev = int(rng.integers(1, n_items + 1))
            seq.append(prev)
        for item in seq:
            users.append(f"u{u}")
            items.append(f"i{item}")
            t += 1.0
            times.append(t)
    inter = Interactions(np.array(users), np.array(items), np.array(times), "synth")
    return inter, SynthTruth(successor, cluster_of_item, user_cluster, spec)


# -- sequences and split -----------------------------------------------------------------------
@dataclass
class Sequences:
    """Time-ordered item-id sequences per user and the item vocabulary (id k = items[k - 1])."""

    users: list[str]
    seqs: list[list[int]]
    items: list[str]
    skipped_single: int = 0
    dropped_unknown: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return len(self.items)


def to_sequences(inter: Interactions, vocabulary: list[str] | None = None) -> Sequences:
    """Group by user, order by timestamp; users with fewer than two interactions are skipped.

    With ``vocabulary`` (a trained model's items), items outside it are dropped and counted.
    """
    import pandas as pd

    df = pd.DataFrame({"u": inter.users, "i": inter.items, "t": inter.timestamps})
    df["row"] = np.arange(len(df))
    if vocabulary is None:
        items = list(dict.fromkeys(df["i"]))
    else:
        items = list(vocabulary)
    index = {tok: k + 1 for k, tok in enumerate(items)}
    df["id"] = df["i"].map(index)
    dropped = int(df["id"].isna().sum())
    df = df.dropna(subset=["id"]).sort_values(["t", "row"], kind="stable")
    users, seqs, skipped = [], [], 0
    for user, group in df.groupby("u", sort=False):
        seq = group["id"].astype(np.int64).tolist()
        if len(seq) < 2:
            skipped += 1
            continue
        users.append(str(user))
        seqs.append(seq)
    notes = []
    if skipped:
        notes.append(f"{skipped} user(s) with a single interaction were skipped (a sequence of "
                     "one cannot be split into history and target)")
    if dropped:
        notes.append(f"{dropped} interaction(s) with items unknown to the model were dropped")
    return Sequences(users, seqs, items, skipped, dropped, notes)


@dataclass
class Split:
    """Leave-one-out split: training prefixes -> next item, validation and test cases."""

    train_inputs: list[list[int]]
    train_targets: np.ndarray
    valid_users: list[int]
    valid_inputs: list[list[int]]
    valid_targets: np.ndarray
    test_users: list[int]
    test_inputs: list[list[int]]
    test_targets: np.ndarray


def leave_one_out(seqs: list[list[int]], max_len: int) -> Split:
    """Split every sequence (see the module docstring); histories keep their last max_len."""
    tr_x, tr_y, va_u, va_x, va_y, te_u, te_x, te_y = [], [], [], [], [], [], [], []
    for u, s in enumerate(seqs):
        n = len(s)
        te_u.append(u)
        te_x.append(s[max(0, n - 1 - max_len):n - 1])
        te_y.append(s[-1])
        if n >= 3:
            va_u.append(u)
            va_x.append(s[max(0, n - 2 - max_len):n - 2])
            va_y.append(s[-2])
        for t in range(1, n - 2):
            tr_x.append(s[max(0, t - max_len):t])
            tr_y.append(s[t])
    return Split(tr_x, np.array(tr_y, dtype=np.int64), va_u, va_x, np.array(va_y, np.int64),
                 te_u, te_x, np.array(te_y, dtype=np.int64))


def pad_left(seqs: list[list[int]], max_len: int):
    """Left-padded LongTensor (B, L) with L the longest sequence (at most max_len)."""
    import torch

    width = max(1, min(max_len, max((len(s) for s in seqs), default=1)))
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-width:]
        if s:
            out[r, width - len(s):] = s
    return torch.from_numpy(out)
