"""Contrastive variational autoencoder (cVAE), a contrastive-analysis baseline for SepCLR.

Paper: Abid & Zou, "Contrastive Variational Autoencoder Enhances Salient Features",
arXiv:1902.04601 (2019).

The cVAE splits the latent space in two: a *common* (the paper's "irrelevant") latent ``z``
inferred for every sample, and a *salient* latent ``s`` that only the target group (here:
diseased patients) may use. One decoder maps ``[z, s]`` back to the image; a background sample
(healthy subject) is decoded from ``[z, 0]``, so whatever distinguishes the target from the
background has to be carried by ``s``.

Training maximises the sum of the target and background evidence lower bounds of the paper
(Sec. 2: the target bound with reconstruction ``f(x | z, s)`` and KL terms for ``z`` and ``s``,
and the background bound with reconstruction ``f(b | z, 0)`` and a KL term for ``z``). The
optional total-correlation penalty of the paper (a discriminator that tells ``[z, s]`` pairs
from pairs with shuffled ``s``, trained adversarially) is **left out**: it needs a second
optimiser and an adversarial schedule, which does not fit the single ``loss.backward()``
protocol the SepCLR comparison harness uses for every method, and the paper presents it as an
optional add-on to the basic model. This module is therefore the plain cVAE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ContrastiveVAE", "gaussian_kl"]


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL divergence of a diagonal Gaussian posterior from the standard normal prior.

    Implements the closed form of Kingma & Welling, "Auto-Encoding Variational Bayes"
    (arXiv:1312.6114, Appendix B), used by every KL term of the cVAE (Abid & Zou 2019, Sec. 2):

    ``KL(N(mu, diag(exp(logvar))) || N(0, I))
    = 0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``

    Parameters
    ----------
    mu : Tensor
        Posterior means, shape ``(N, D)``.
    logvar : Tensor
        Posterior log-variances, shape ``(N, D)``.

    Returns
    -------
    Tensor
        One KL value per sample, shape ``(N,)``.

    Examples
    --------
    >>> gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))
    tensor([0., 0.])
    """
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(
            f"mu and logvar must both have shape (N, D); got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def _groups(channels: int) -> int:
    """Number of GroupNorm groups: the largest of 8, 4, 2, 1 dividing ``channels``."""
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class _GaussianEncoder(nn.Module):
    """Three stride-2 conv blocks (conv, GroupNorm, ReLU), then linear mean / log-variance heads.

    Maps ``x: (N, C, S, S)`` to ``(mu, logvar)``, each ``(N, latent_dim)``.
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
                nn.GroupNorm(_groups(c_out), c_out),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = chans[-1] * (image_size // 8) ** 2
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class ContrastiveVAE(nn.Module):
    """Contrastive VAE of Abid & Zou (2019) for images in ``[0, 1]``.

    Two convolutional encoders give diagonal-Gaussian posteriors ``q(z | x)`` (common /
    "irrelevant" latent, every sample) and ``q(s | x)`` (salient latent, used for target samples
    only); one transposed-convolution decoder maps ``[z, s]`` to per-pixel Bernoulli logits.
    Background samples are decoded from ``[z, 0]`` (paper, Sec. 2 and Fig. 1).

    The objective is the negative sum of the paper's target and background lower bounds,
    written per batch as

    ``loss = recon + beta * (kl_z + kl_s)``

    with ``recon`` the Bernoulli negative log-likelihood (BCE with logits, summed over pixels,
    averaged over all samples), ``kl_z`` the KL of ``q(z | x)`` from ``N(0, I)`` averaged over all
    samples and ``kl_s`` the KL of ``q(s | x)`` averaged over the target samples only (0 when the
    batch has none). ``beta = 1`` is the paper's plain ELBO. The paper's optional
    total-correlation discriminator term is not included (see the module docstring).

    Parameters
    ----------
    in_channels : int
        Image channels ``C`` (1 or 3 typically).
    image_size : int
        Height = width ``S`` of the (square) images; must be a positive multiple of 8, because
        the encoder halves it three times and the decoder doubles it back.
    common_dim : int
        Dimension of the common latent ``z``.
    salient_dim : int
        Dimension of the salient latent ``s``.
    width : int
        Channels of the first conv block; the next blocks use ``2 * width`` and ``4 * width``.
    beta : float
        Weight of the KL terms (``>= 0``).

    Examples
    --------
    >>> model = ContrastiveVAE(in_channels=1, image_size=32)
    >>> x = torch.rand(4, 1, 32, 32)
    >>> out = model(x, torch.tensor([True, False, True, False]))
    >>> out["loss"].backward()
    >>> common, salient = model.embed(x)
    >>> common.shape, salient.shape
    (torch.Size([4, 16]), torch.Size([4, 16]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 32,
        common_dim: int = 16,
        salient_dim: int = 16,
        width: int = 32,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if image_size <= 0 or image_size % 8 != 0:
            raise ValueError(
                f"image_size must be a positive multiple of 8 (the encoder downsamples by 8); "
                f"got {image_size}. Resize or crop the images, e.g. to 32 or 64."
            )
        for name, value in (
            ("in_channels", in_channels),
            ("common_dim", common_dim),
            ("salient_dim", salient_dim),
            ("width", width),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0; got {beta}")

        self.in_channels = in_channels
        self.image_size = image_size
        self.common_dim = common_dim
        self.salient_dim = salient_dim
        self.beta = float(beta)

        self.encoder_z = _GaussianEncoder(in_channels, image_size, common_dim, width)
        self.encoder_s = _GaussianEncoder(in_channels, image_size, salient_dim, width)

        self._base = image_size // 8
        self._base_channels = 4 * width
        self.decoder_input = nn.Linear(
            common_dim + salient_dim, self._base_channels * self._base**2
        )
        chans = [4 * width, 2 * width, width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.GroupNorm(_groups(c_in), c_in),
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
            ]
        layers += [
            nn.GroupNorm(_groups(width), width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, in_channels, kernel_size=4, stride=2, padding=1),
        ]
        self.decoder = nn.Sequential(*layers)

    # ------------------------------------------------------------------ helpers
    def _check_images(self, x: Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}); "
                f"got {tuple(x.shape)}"
            )

    def _check_groups(self, x: Tensor, is_target: Tensor) -> Tensor:
        if is_target.shape != (x.shape[0],):
            raise ValueError(
                f"is_target must have shape (N,) = ({x.shape[0]},); got {tuple(is_target.shape)}"
            )
        if is_target.dtype != torch.bool:
            if is_target.is_floating_point() or is_target.is_complex():
                raise TypeError(
                    f"is_target must be a bool (or 0/1 integer) tensor; got {is_target.dtype}"
                )
            if bool(((is_target != 0) & (is_target != 1)).any()):
                raise ValueError("integer is_target must only hold 0 (background) and 1 (target)")
            is_target = is_target != 0
        return is_target.to(x.device)

    def _sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Reparameterisation trick (Kingma & Welling, Sec. 2.4) in train mode; mean in eval."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    # ------------------------------------------------------------------ public API
    def encode(self, x: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """Posterior parameters of both latents.

        Parameters
        ----------
        x : Tensor
            Images, shape ``(N, C, S, S)``, values in ``[0, 1]``.

        Returns
        -------
        tuple
            ``((mu_z, logvar_z), (mu_s, logvar_s))``, shapes ``(N, common_dim)`` and
            ``(N, salient_dim)``.
        """
        self._check_images(x)
        return self.encoder_z(x), self.encoder_s(x)

    def decode(self, z: Tensor, s: Tensor) -> Tensor:
        """Bernoulli logits of the images generated from ``[z, s]``.

        Parameters
        ----------
        z : Tensor
            Common latents, shape ``(N, common_dim)``.
        s : Tensor
            Salient latents, shape ``(N, salient_dim)`` (zeros for background samples).

        Returns
        -------
        Tensor
            Logits, shape ``(N, C, S, S)``; ``torch.sigmoid`` gives the mean image.
        """
        h = self.decoder_input(torch.cat([z, s], dim=1))
        h = h.view(-1, self._base_channels, self._base, self._base)
        return self.decoder(h)

    def _latents(self, x: Tensor, is_target: Tensor) -> tuple[Tensor, ...]:
        (mu_z, logvar_z), (mu_s, logvar_s) = self.encode(x)
        z = self._sample(mu_z, logvar_z)
        s = self._sample(mu_s, logvar_s)
        # The cVAE's defining rule: background samples are decoded with s = 0.
        s = torch.where(is_target.unsqueeze(1), s, torch.zeros_like(s))
        return mu_z, logvar_z, mu_s, logvar_s, z, s

    def reconstruct(self, x: Tensor, is_target: Tensor) -> Tensor:
        """Decoder logits for ``x`` (background rows decoded from ``[z, 0]``).

        Samples the latents in train mode and uses the posterior means in eval mode, like
        :meth:`forward`.

        Parameters
        ----------
        x : Tensor
            Images, shape ``(N, C, S, S)``.
        is_target : Tensor
            Bool group labels, shape ``(N,)`` (``True`` = target).

        Returns
        -------
        Tensor
            Logits, shape ``(N, C, S, S)``.
        """
        self._check_images(x)
        is_target = self._check_groups(x, is_target)
        *_, z, s = self._latents(x, is_target)
        return self.decode(z, s)

    def forward(self, x: Tensor, is_target: Tensor) -> dict[str, Tensor]:
        """Negative cVAE evidence lower bound of a mixed batch (Abid & Zou 2019, Sec. 2).

        Parameters
        ----------
        x : Tensor
            Images, shape ``(N, C, S, S)``, values in ``[0, 1]``.
        is_target : Tensor
            Bool group labels, shape ``(N,)``: ``True`` = target (e.g. patient), ``False`` =
            background (e.g. healthy control). 0/1 integer tensors are accepted.

        Returns
        -------
        dict of str to Tensor
            Scalars ``"loss"`` (``recon + beta * (kl_z + kl_s)``), ``"recon"`` (Bernoulli NLL
            summed over pixels, mean over samples), ``"kl_z"`` (mean over samples) and
            ``"kl_s"`` (mean over target samples, 0 if there are none).
        """
        self._check_images(x)
        is_target = self._check_groups(x, is_target)
        mu_z, logvar_z, mu_s, logvar_s, z, s = self._latents(x, is_target)
        logits = self.decode(z, s)

        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        recon = recon.flatten(1).sum(dim=1).mean()
        kl_z = gaussian_kl(mu_z, logvar_z).mean()
        if bool(is_target.any()):
            kl_s = gaussian_kl(mu_s[is_target], logvar_s[is_target]).mean()
        else:
            kl_s = mu_s.new_zeros(())
        loss = recon + self.beta * (kl_z + kl_s)
        return {"loss": loss, "recon": recon, "kl_z": kl_z, "kl_s": kl_s}

    @torch.no_grad()
    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Common and salient representations: the posterior means ``(mu_z, mu_s)``.

        Runs in eval mode and restores the previous train/eval state of every submodule.

        Parameters
        ----------
        x : Tensor
            Images, shape ``(N, C, S, S)``.

        Returns
        -------
        tuple of Tensor
            ``(common, salient)``, shapes ``(N, common_dim)`` and ``(N, salient_dim)``.
        """
        modes = {m: m.training for m in self.modules()}
        self.eval()
        try:
            (mu_z, _), (mu_s, _) = self.encode(x)
        finally:
            for m, mode in modes.items():
                m.training = mode
        return mu_z, mu_s
