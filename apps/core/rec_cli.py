"""``medcl core rec``: sequential recommendation with SASRec, CL4SRec and MCLRec (heavy
imports inside commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="rec",
    help="Sequential recommendation: SASRec, CL4SRec and MCLRec (meta-optimised contrastive "
    "learning) on RecBole .inter logs.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = ("synth (latent-cluster Markov sessions) or a RecBole .inter file "
             "(user_id:token, item_id:token, timestamp:float).")


@app.callback()
def _group() -> None:
    """Train and evaluate next-item recommenders."""


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "synth",
    method: Annotated[str, typer.Option(help="sasrec, cl4srec or mclrec.")] = "mclrec",
    epochs: Annotated[int, typer.Option(help="Training epochs (best validation kept).")] = 20,
    batch_size: Annotated[int, typer.Option(help="Training sequences per batch.")] = 256,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    max_len: Annotated[int, typer.Option(help="Longest history kept.")] = 50,
    hidden: Annotated[int, typer.Option(help="SASRec width.")] = 64,
    dropout: Annotated[float, typer.Option(help="Hidden and attention dropout.")] = 0.5,
    cl_weight: Annotated[float | None, typer.Option(
        help="lambda of the data-view InfoNCE (default: cl4srec 0.1, mclrec 0.03).")] = None,
    beta: Annotated[float, typer.Option(help="MCLRec: weight of L_cl,2 + gamma R.")] = 0.1,
    first_order: Annotated[bool, typer.Option(
        "--first-order", help="MCLRec: no gradient through the look-ahead update.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Train a recommender; scores validation each epoch and the test items at the end."""
    from .rec_train import RecConfig, train_run

    cfg = RecConfig(method=method, data=data, epochs=epochs, batch_size=batch_size, lr=lr,
                    max_len=max_len, hidden=hidden, dropout=dropout, attn_dropout=dropout,
                    cl_weight=cl_weight, beta=beta, second_order=not first_order, seed=seed)
    typer.echo(f"report: {train_run(cfg, out, progress=not quiet)}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core rec train`.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
) -> None:
    """HR@5/10/20 and NDCG@5/10/20, full ranking, each user's last item as the target."""
    from .rec_evaluate import evaluate_run

    typer.echo(f"report: {evaluate_run(model, data, out)}")
