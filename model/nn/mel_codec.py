"""An offline codec: normalised log-mel latents, decoded by Griffin-Lim (untrained) or a small Vocos-style vocoder.

The published VibeVoice codec cannot be downloaded here, so the demo model generates log-mel latents instead.
Both halves have the codec ONNX interface of model/nn/codec.py (spec §1.6), so the runtime and service use it
unchanged; its sidecar says kind "mel", the sample rate, the hop and the latent width.

    encoder  audio (b 1 m) -> latents (b n c): a fixed STFT (a strided conv with a windowed DFT basis, so it
             exports as one Conv), magnitude, mel filterbank, log, per-bin normalisation with stored statistics,
             then `stack` consecutive STFT frames concatenated into one latent (halves the DiT's frame rate
             while the vocoder keeps 20 ms resolution)
    decoder  latents (b n c) -> audio (b 1 n*hop):
             hidden_dim == 0  Griffin-Lim: pseudo-inverse of the filterbank, then a fixed number of fast
                              Griffin-Lim iterations (unrolled, no trained weights) - the baseline
             hidden_dim  > 0  Vocos-style vocoder: ConvNeXt blocks predict each STFT frame's log-magnitude and
                              phase, and an inverse STFT (a transposed conv with the inverse DFT basis, divided by
                              the window's overlap-add envelope) makes the waveform

Derived sizes (MelSpec): stft_hop = hop / stack, n_fft = the power of two >= 3 * stft_hop, n_mels = latent / stack.
The demo codec: 16 kHz, hop 640 (25 latent frames/s), latent 128 = 2 stacked frames x 64 mel bins.

Legend:
    b  batch
    m  audio samples (a multiple of the hop)
    n  latent frames (m / hop)
    s  STFT frames (n * stack)
    k  frequency bins (n_fft / 2 + 1); 2k = real and imaginary parts
    f  mel bins
    c  latent channels (stack * f)
    d  vocoder width (hidden_dim)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import CodecConfig

STACK = 2  # STFT frames per latent frame
LOG_FLOOR = 1e-5  # magnitude floor before the log: silence is log(1e-5) = -11.5
GRIFFIN_LIM_ITERATIONS = 32
GRIFFIN_LIM_MOMENTUM = 0.99  # "fast Griffin-Lim" (Perraudin et al. 2013): converges in far fewer iterations
VOCODER_LAYERS = 6
VOCODER_KERNEL = 7
VOCODER_FF_MULT = 3
MAX_LOG_MAGNITUDE = 6.0  # exp(6) = 403: the vocoder's magnitude cannot explode early in training

DEMO_CODEC = CodecConfig(kind="mel", sample_rate_hz=16_000, hop_samples=640, latent_dim=128, hidden_dim=0)


@dataclass(frozen=True)
class MelSpec:
    """The STFT and mel sizes implied by a CodecConfig of kind "mel"."""

    sample_rate_hz: int
    stft_hop: int
    n_fft: int
    n_mels: int

    @classmethod
    def from_codec(cls, cfg: CodecConfig) -> MelSpec:
        if cfg.hop_samples % STACK or cfg.latent_dim % STACK:
            raise ValueError(f"a mel codec needs hop_samples and latent_dim divisible by {STACK}, got {cfg}")
        stft_hop = cfg.hop_samples // STACK
        n_fft = 1 << math.ceil(math.log2(3 * stft_hop))
        return cls(cfg.sample_rate_hz, stft_hop, n_fft, cfg.latent_dim // STACK)

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1


def hann_window(n_fft: int) -> Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64)


def mel_filterbank(spec: MelSpec) -> Tensor:
    """(f k) triangular filters on the HTK mel scale, each normalised to unit area (Slaney-style)."""

    def hz_to_mel(hz: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: Tensor) -> Tensor:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    nyquist = spec.sample_rate_hz / 2
    edges_hz = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(torch.tensor(nyquist))), spec.n_mels + 2))
    bins_hz = torch.linspace(0.0, nyquist, spec.num_bins, dtype=torch.float64)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (f 1)
    rising = (bins_hz[None] - lower) / (centre - lower)
    falling = (upper - bins_hz[None]) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)  # (f k)
    return (filters * (2.0 / (upper - lower))).double()


def stft_basis(spec: MelSpec) -> Tensor:
    """(2k 1 n_fft) windowed DFT: conv1d(audio, basis, stride=hop) gives real parts then imaginary parts."""
    n = torch.arange(spec.n_fft, dtype=torch.float64)
    k = torch.arange(spec.num_bins, dtype=torch.float64)
    angle = 2.0 * math.pi * k[:, None] * n[None, :] / spec.n_fft  # (k n_fft)
    window = hann_window(spec.n_fft)
    return torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])[:, None, :]


def istft_basis(spec: MelSpec) -> Tensor:
    """(2k 1 n_fft) inverse real DFT times the synthesis window, for conv_transpose1d overlap-add."""
    n = torch.arange(spec.n_fft, dtype=torch.float64)
    k = torch.arange(spec.num_bins, dtype=torch.float64)
    angle = 2.0 * math.pi * k[:, None] * n[None, :] / spec.n_fft
    # Bins 0 and n_fft/2 appear once in the full spectrum, every other bin twice (with its conjugate).
    weight = torch.full((spec.num_bins, 1), 2.0, dtype=torch.float64)
    weight[0] = weight[-1] = 1.0
    window = hann_window(spec.n_fft)
    real = weight * torch.cos(angle) * window / spec.n_fft
    imag = -weight * torch.sin(angle) * window / spec.n_fft
    return torch.cat([real, imag])[:, None, :]


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class Stft(nn.Module):
    """audio (b 1 m) -> (b 2k s), s = m / stft_hop; frame i is centred on sample i * stft_hop (zero padded).

    The exported graph uses a strided conv with the DFT basis (opset 18 has no usable STFT for this); eager
    torch (training) uses the FFT, the same numbers several times faster.
    """

    def __init__(self, spec: MelSpec) -> None:
        super().__init__()
        self.hop = spec.stft_hop
        self.n_fft = spec.n_fft
        # Left n_fft/2 centres frame 0 on sample 0; the right pad gives exactly m / hop frames.
        self.pad = (spec.n_fft // 2, spec.n_fft // 2 - spec.stft_hop)
        self.register_buffer("basis", stft_basis(spec).float(), persistent=False)
        self.register_buffer("window", hann_window(spec.n_fft).float(), persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        padded = F.pad(audio, self.pad)  # (b 1 m+n_fft-hop)
        if _exporting():
            return F.conv1d(padded, self.basis, stride=self.hop)  # (b 2k s)
        spectrum = torch.stft(
            padded[:, 0], self.n_fft, self.hop, window=self.window, center=False, return_complex=True
        )  # (b k s)
        return torch.cat([spectrum.real, spectrum.imag], dim=1)  # (b 2k s)


class InverseStft(nn.Module):
    """(b 2k s) real and imaginary parts -> audio (b 1 s*stft_hop): windowed overlap-add over the envelope."""

    def __init__(self, spec: MelSpec) -> None:
        super().__init__()
        self.hop = spec.stft_hop
        self.n_fft = spec.n_fft
        self.offset = spec.n_fft // 2
        self.register_buffer("basis", istft_basis(spec).float(), persistent=False)
        self.register_buffer("window", hann_window(spec.n_fft).float(), persistent=False)
        self.register_buffer("window_sq", (hann_window(spec.n_fft) ** 2).float()[None, None, :], persistent=False)

    def forward(self, spectrum: Tensor) -> Tensor:
        num_frames = spectrum.shape[-1]
        num_samples = num_frames * self.hop
        if _exporting():
            audio = F.conv_transpose1d(spectrum, self.basis, stride=self.hop)  # (b 1 (s-1)*hop+n_fft)
        else:  # the same overlap-add through the FFT and fold (training speed)
            real, imag = spectrum.chunk(2, dim=1)
            frames = (
                torch.fft.irfft(torch.complex(real, imag).transpose(1, 2), n=self.n_fft) * self.window
            )  # (b s n_fft)
            length = (num_frames - 1) * self.hop + self.n_fft
            audio = F.fold(
                frames.transpose(1, 2), output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop)
            )[:, :, 0]  # (b 1 (s-1)*hop+n_fft)
        ones = torch.ones_like(spectrum[:1, :1, :])  # (1 1 s)
        envelope = F.conv_transpose1d(ones, self.window_sq, stride=self.hop)  # (1 1 (s-1)*hop+n_fft)
        audio = audio / envelope.clamp_min(1e-3)
        return audio[..., self.offset : self.offset + num_samples]


def _unstack(latents: Tensor, n_mels: int) -> Tensor:
    """(b n c) -> (b f s): each latent frame holds `STACK` consecutive mel frames."""
    b = latents.shape[0]
    return latents.reshape(b, -1, n_mels).transpose(1, 2)  # (b f s)


class MelEncoder(nn.Module):
    """audio (b 1 m) float32 -> normalised log-mel latents (b n c), n = m // hop (a partial last hop is dropped)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.spec = MelSpec.from_codec(cfg)
        self.hop = cfg.hop_samples
        self.stft = Stft(self.spec)
        self.register_buffer("filterbank", mel_filterbank(self.spec).float(), persistent=False)
        # Per-bin statistics of log-mel on the training corpus (fit_statistics); saved with the codec.
        self.register_buffer("mean", torch.full((self.spec.n_mels, 1), -5.0))
        self.register_buffer("std", torch.full((self.spec.n_mels, 1), 2.5))

    def log_mel(self, audio: Tensor) -> Tensor:
        """audio (b 1 m) -> (b f s) log-mel, before normalisation."""
        num_frames = audio.shape[-1] // self.hop
        audio = audio[..., : num_frames * self.hop]
        spectrum = self.stft(audio)  # (b 2k s)
        real, imag = spectrum.chunk(2, dim=1)
        magnitude = torch.sqrt(real * real + imag * imag + 1e-12)  # (b k s)
        mel = torch.matmul(self.filterbank, magnitude)  # (b f s)
        return torch.log(torch.clamp(mel, min=LOG_FLOOR))

    def forward(self, audio: Tensor) -> Tensor:
        normalised = (self.log_mel(audio) - self.mean) / self.std  # (b f s)
        b = normalised.shape[0]
        return normalised.transpose(1, 2).reshape(b, -1, STACK * self.spec.n_mels)  # (b n c)

    @torch.no_grad()
    def fit_statistics(self, log_mels: list[Tensor]) -> None:
        """Sets mean and std per mel bin from (f s) log-mel frames of real speech."""
        frames = torch.cat(log_mels, dim=-1)  # (f total)
        self.mean.copy_(frames.mean(dim=-1, keepdim=True))
        self.std.copy_(frames.std(dim=-1, keepdim=True).clamp_min(0.1))


class GriffinLimDecoder(nn.Module):
    """latents (b n c) -> audio (b 1 n*hop) by fast Griffin-Lim from the filterbank's pseudo-inverse; no weights."""

    def __init__(self, cfg: CodecConfig, iterations: int = GRIFFIN_LIM_ITERATIONS) -> None:
        super().__init__()
        self.spec = MelSpec.from_codec(cfg)
        self.iterations = iterations
        self.stft = Stft(self.spec)
        self.istft = InverseStft(self.spec)
        self.register_buffer(
            "inverse_filterbank", torch.linalg.pinv(mel_filterbank(self.spec)).float(), persistent=False
        )
        self.register_buffer("mean", torch.full((self.spec.n_mels, 1), -5.0))
        self.register_buffer("std", torch.full((self.spec.n_mels, 1), 2.5))

    def forward(self, latents: Tensor) -> Tensor:
        log_mel = _unstack(latents, self.spec.n_mels) * self.std + self.mean  # (b f s)
        magnitude = torch.relu(torch.matmul(self.inverse_filterbank, torch.exp(log_mel)))  # (b k s)
        # Zero phase to start: deterministic, and GL fixes it within a few iterations.
        spectrum = torch.cat([magnitude, torch.zeros_like(magnitude)], dim=1)  # (b 2k s)
        previous = spectrum
        for _ in range(self.iterations):
            rebuilt = self.stft(self.istft(spectrum))  # (b 2k s), the nearest consistent spectrogram
            accelerated = rebuilt + GRIFFIN_LIM_MOMENTUM * (rebuilt - previous)
            previous = rebuilt
            real, imag = accelerated.chunk(2, dim=1)
            norm = torch.sqrt(real * real + imag * imag + 1e-12)
            spectrum = torch.cat([magnitude * real / norm, magnitude * imag / norm], dim=1)
        return self.istft(spectrum)  # (b 1 m)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, LayerNorm, pointwise MLP, layer scale, residual (ConvNeXt, as in Vocos)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, VOCODER_KERNEL, padding=VOCODER_KERNEL // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, VOCODER_FF_MULT * dim)
        self.down = nn.Linear(VOCODER_FF_MULT * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1.0 / VOCODER_LAYERS))

    def forward(self, x: Tensor) -> Tensor:  # x (b d s)
        h = self.depthwise(x).transpose(1, 2)  # (b s d)
        h = self.down(F.gelu(self.up(self.norm(h)))) * self.scale
        return x + h.transpose(1, 2)


class VocosDecoder(nn.Module):
    """latents (b n c) -> audio (b 1 n*hop): ConvNeXt blocks -> per-frame log-magnitude and phase -> inverse STFT."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.hidden_dim <= 0:
            raise ValueError("the vocoder needs hidden_dim > 0 (hidden_dim 0 is the Griffin-Lim decoder)")
        self.spec = MelSpec.from_codec(cfg)
        dim = cfg.hidden_dim
        self.embed = nn.Conv1d(self.spec.n_mels, dim, VOCODER_KERNEL, padding=VOCODER_KERNEL // 2)
        self.embed_norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim) for _ in range(VOCODER_LAYERS))
        self.out_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 2 * self.spec.num_bins)
        self.istft = InverseStft(self.spec)

    def forward(self, latents: Tensor) -> Tensor:
        x = self.embed(_unstack(latents, self.spec.n_mels))  # (b d s)
        x = self.embed_norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.out_norm(x.transpose(1, 2))).transpose(1, 2)  # (b 2k s)
        log_magnitude, phase = out.chunk(2, dim=1)  # (b k s) each
        magnitude = torch.exp(torch.clamp(log_magnitude, max=MAX_LOG_MAGNITUDE))
        spectrum = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)  # (b 2k s)
        return self.istft(spectrum)  # (b 1 m)


class MelCodec(nn.Module):
    """Encoder/decoder pair with the StandinCodec interface (encode, decode, encoder, decoder, cfg, config())."""

    def __init__(self, cfg: CodecConfig = DEMO_CODEC, seed: int = 0) -> None:
        super().__init__()
        if cfg.kind != "mel":
            raise ValueError(f"MelCodec needs a codec config of kind 'mel', got {cfg.kind!r}")
        self.cfg = cfg
        self.encoder = MelEncoder(cfg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.decoder: nn.Module = VocosDecoder(cfg) if cfg.hidden_dim > 0 else GriffinLimDecoder(cfg)
        self.sync_statistics()

    def sync_statistics(self) -> None:
        """Copies the encoder's normalisation statistics to a Griffin-Lim decoder (which undoes them)."""
        if isinstance(self.decoder, GriffinLimDecoder):
            self.decoder.mean.copy_(self.encoder.mean)
            self.decoder.std.copy_(self.encoder.std)

    def encode(self, audio: Tensor) -> Tensor:
        return self.encoder(audio)

    def decode(self, latents: Tensor) -> Tensor:
        return self.decoder(latents)

    def config(self) -> CodecConfig:
        return self.cfg


def save_mel_codec(codec: MelCodec, path: str) -> None:
    """Writes {"codec": CodecConfig dict, "state": state_dict} (the statistics and any vocoder weights)."""
    from dataclasses import asdict

    torch.save({"codec": asdict(codec.cfg), "state": codec.state_dict()}, path)


def load_mel_codec(path: str, *, hidden_dim: int | None = None) -> MelCodec:
    """Loads a saved MelCodec; hidden_dim (when given) builds that decoder and keeps only the encoder's statistics."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    cfg = CodecConfig(**payload["codec"])
    state: dict[str, Tensor] = payload["state"]
    if hidden_dim is not None and hidden_dim != cfg.hidden_dim:
        cfg = CodecConfig(**{**payload["codec"], "hidden_dim": hidden_dim})
        state = {key: value for key, value in state.items() if key.startswith("encoder.")}
        codec = MelCodec(cfg)
        codec.load_state_dict(state, strict=False)
        codec.sync_statistics()
        return codec
    codec = MelCodec(cfg)
    codec.load_state_dict(state)
    codec.sync_statistics()
    return codec
