"""``medcl evaluate --app mvcnet``: a motor-imagery card's subjects, one unit each (entry point
``medcl.evaluators``).

MVCNet is evaluated the way MOABB evaluates pipelines: within each subject, the card's protocol
(``--option protocol=co|cv|t2e``, default ``co``, MVCNet's chronological split) trains and tests
every model on that subject's trials; a unit is one subject, so subjects shard over
``--workers`` and ranks and a killed evaluation resumes by subject.

Where the data comes from:

- without ``--root``: MOABB, the card's ``access.moabb_id`` (from the MNE data folder, downloaded
  there by MOABB when missing), the subjects of ``--subjects`` (default: all of the card's);
- with ``--root``: recordings already on disk, one or more per subject, named as the
  competition files (``A01T.gdf`` ...; subject ``A01``) or ``sub-01.edf``-style (subject = file
  stem), e.g. what ``medcl mvcnet simulate`` writes.

``--model RUN`` (optional) takes the protocol, preprocessing and models of a ``medcl mvcnet
train`` run; otherwise ``--option models=mvcnet,csp_lda``, ``epochs=``, ``seeds=`` apply
(defaults: the paper's, models ``mvcnet,csp_lda``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcl.io.evaluate import Case, CaseArtefacts, Evaluator, card_root_error

COLUMNS = ["model", "accuracy", "accuracy_std", "seeds", "n_train", "n_test", "protocol"]
EEG_SUFFIXES = (".gdf", ".edf", ".bdf", ".fif", ".vhdr", ".set")


def _subjects(text: str | None, n: int | None) -> list[int]:
    from medcl.io import ConfigError

    if not text:
        if not n:
            raise ConfigError("the card does not say how many subjects it has",
                              fix="pass --subjects, e.g. 1-9")
        return list(range(1, int(n) + 1))
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError:
            raise ConfigError(f"--subjects {text!r}: use e.g. 1-9 or 1,3,5") from None
    return out


def find_cases(card: Any, root: Path | None, options: dict) -> list[Case]:
    from .harness import subject_session

    if card.modality != "eeg":
        raise card_root_error(card, root, f"card {card.id} is not an EEG card")
    if root is None:
        moabb = card.moabb_id
        if not moabb:
            raise card_root_error(card, root, "the card has no MOABB dataset")
        return [Case(f"{s:02d}", {"moabb": moabb, "subject": str(s), "card": card.id})
                for s in _subjects(options.get("subjects"), card.subjects)]
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and p.name.lower().endswith(EEG_SUFFIXES))
    if not files:
        raise card_root_error(card, root, f"no EEG recording ({', '.join(EEG_SUFFIXES)})")
    by_subject: dict[str, list[str]] = {}
    for f in files:
        by_subject.setdefault(subject_session(f)[0], []).append(str(f))
    return [Case(s, {"files": "|".join(fs), "card": card.id}) for s, fs in by_subject.items()]


def load(model: Path | None, options: dict) -> Any:
    from dataclasses import fields

    from medcl.io import RunFolder
    from medcl.io.cli import int_list

    from .config import MVCNetConfig

    known = {f.name for f in fields(MVCNetConfig)}
    if model is not None:
        raw = RunFolder(model).read_config()
        cfg = MVCNetConfig(**{k: v for k, v in (raw.get("config") or {}).items() if k in known})
        models = list(raw.get("models") or ["mvcnet", "csp_lda"])
    else:
        given = {k: v for k, v in options.items() if k in known and k != "seeds"}
        for k in ("epochs", "batch_size"):
            if k in given:
                given[k] = int(given[k])
        for k in ("l_freq", "h_freq", "lr"):
            if k in given:
                given[k] = float(given[k])
        if "seeds" in options:
            given["seeds"] = int_list(options["seeds"], "--option seeds")
        cfg = MVCNetConfig(**given)
        models = [m.strip() for m in options.get("models", "mvcnet,csp_lda").split(",")]
    return cfg, models


def score(state: Any, case: Case, art: CaseArtefacts) -> list[dict]:
    from .harness import load_data, run_protocol

    cfg, models = state
    if "moabb" in case.files:
        data = load_data(cfg, moabb=case.files["moabb"], subjects=[int(case.files["subject"])])
    else:
        data = load_data(cfg, files=[Path(f) for f in case.files["files"].split("|")])
    table, _ = run_protocol(cfg, data, models)
    rows = []
    for model, grp in table.groupby("model", sort=False):
        per_seed = grp.groupby("seed").accuracy.mean()
        rows.append({"model": model, "accuracy": float(per_seed.mean()),
                     "accuracy_std": float(per_seed.std(ddof=0)), "seeds": int(len(per_seed)),
                     "n_train": int(grp.n_train.sum()), "n_test": int(grp.n_test.sum()),
                     "protocol": cfg.protocol})
    return rows


EVALUATOR = Evaluator(name="mvcnet", columns=COLUMNS, score_columns=["accuracy"],
                      find_cases=find_cases, load=load, score=score, needs_model=False,
                      cards=["bnci2014_001", "bnci2014_004", "bnci2014_002", "bnci2015_001",
                             "zhou2016", "physionetmi"])
