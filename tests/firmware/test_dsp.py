"""Fixed-point DSP under the real MicroPython unix port, against numpy / scipy references.

Stated tolerances (int16 counts): biquad low-pass and decimation within 2 of scipy.signal.lfilter run in double
precision with the same Q14 coefficients; DC blocker within 16 (its pole near 1 recirculates rounding noise);
FFT within 4 of numpy.fft.rfft of the same windowed integers; features exact to their integer definitions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal as ss

from tests.support.micropython import run_micropython

pytestmark = pytest.mark.micropython

RATE = 1000.0
N = 256
FRAMES = N * 8


def _signal() -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(1)
    t = np.arange(FRAMES) / RATE
    ch0 = (
        8000 * np.sin(2 * np.pi * 37 * t) + 3000 * np.sin(2 * np.pi * 210 * t) + 2000 + rng.normal(0, 500, FRAMES)
    )
    ch1 = 12000 * np.sin(2 * np.pi * 5 * t) + rng.normal(0, 2000, FRAMES) + 4000 * (rng.random(FRAMES) < 0.01)
    return np.stack([ch0, ch1], axis=1).round().clip(-32768, 32767).astype("<i2")


def _run(tmp: Path, kernels: str) -> dict[str, Any]:
    path = tmp / f"signal-{kernels}.bin"
    _signal().tofile(path)
    out: dict[str, Any] = json.loads(run_micropython("dsp_run.py", str(path), str(N), str(RATE), kernels))
    return out


@pytest.fixture(scope="module")
def viper(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("dsp"), "viper")


def _lfilter(coef_q14: list[int], x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    c = np.asarray(coef_q14, dtype=np.float64) / 16384
    out: npt.NDArray[np.float64] = ss.lfilter(c[:3], np.r_[1.0, c[3:]], x)
    return out


def test_lowpass_design_is_the_butterworth_biquad(viper: dict[str, Any]) -> None:
    b, a = ss.butter(2, (RATE / 10) / (RATE / 2))
    ours = np.asarray(viper["lowpass_coef"]) / 16384
    assert np.abs(ours - np.r_[b, a[1:]]).max() <= 1 / 16384


def test_lowpass_across_windows_matches_lfilter(viper: dict[str, Any]) -> None:
    x = _signal().astype(np.float64)
    ref = np.stack([_lfilter(viper["lowpass_coef"], x[:, ch]) for ch in range(2)], axis=1)
    ours = np.asarray(viper["lowpass"], dtype=np.float64).reshape(-1, 2)
    assert np.abs(ours - ref).max() <= 2.0


def test_dc_blocker_matches_lfilter_and_removes_the_offset(viper: dict[str, Any]) -> None:
    x = _signal().astype(np.float64)[:, 0]
    ours = np.asarray(viper["dc"], dtype=np.float64)
    assert np.abs(ours - _lfilter(viper["dc_coef"], x)).max() <= 16.0
    b0, b1, b2 = viper["dc_coef"][:3]
    assert b0 + b1 + b2 == 0  # a zero at DC, exactly, in Q14
    assert abs(np.mean(x[-1024:])) > 1900  # the input carries a DC offset of 2000 counts
    assert abs(np.mean(ours[-1024:])) < 0.05 * 2000  # the output keeps less than 5 % of it


def test_decimator_is_lowpass_then_every_fourth_sample(viper: dict[str, Any]) -> None:
    x = _signal().astype(np.float64)
    ref = np.stack([_lfilter(viper["decimator_coef"], x[:, ch]) for ch in range(2)], axis=1)[::4]
    ours = np.asarray(viper["decimated"], dtype=np.float64).reshape(-1, 2)
    assert ours.shape == (FRAMES // 4, 2)
    assert np.abs(ours - ref).max() <= 2.0


def test_spectrum_matches_numpy_rfft(viper: dict[str, Any]) -> None:
    x = _signal().astype(np.int64)[:, 0]
    window = np.asarray(viper["window"], dtype=np.int64)
    assert window.max() == 16384  # half-height Hann, Q15
    for k, spec in enumerate(viper["spectra"]):
        y = (x[k * N : (k + 1) * N] * window + 16384) >> 15
        expected = np.fft.rfft(y) / N
        got = np.asarray(spec[0::2]) + 1j * np.asarray(spec[1::2])
        assert got.shape == (N // 2 + 1,)
        assert np.abs(got - expected).max() <= 4.0
        assert int(np.argmax(np.abs(got))) == round(37 * N / RATE)  # the 37 Hz line


def test_band_energies_are_sums_of_bin_powers(viper: dict[str, Any]) -> None:
    for spec, energies in zip(viper["spectra"], viper["energies"], strict=True):
        re = np.asarray(spec[0::2], dtype=np.int64)
        im = np.asarray(spec[1::2], dtype=np.int64)
        power = (re * re + im * im) >> 8
        expected = [int(power[lo : hi + 1].sum()) for lo, hi in ((1, 4), (5, 16), (17, N // 2))]
        assert energies == expected


def test_features_are_exact_to_their_integer_definitions(viper: dict[str, Any]) -> None:
    x = _signal().astype(np.int64)[:, 1]
    for k, got in enumerate(viper["features"]):
        seg = x[k * N : (k + 1) * N]
        total = int(seg.sum())
        mean = total // N if total >= 0 else -((-total) // N)
        d = seg - mean
        rms = int(np.floor(np.sqrt(int((d * d).sum()) // N)))
        peak = int(np.abs(d).max())
        shift = max(0, int(peak).bit_length() - 12)
        ds = (d + ((1 << shift) >> 1)) >> shift
        t2, t4 = int((ds * ds).sum()), int((ds**4).sum())
        assert got == [mean, rms, peak, (peak << 8) // rms, ((N * t4 // t2) << 8) // t2]
        float_kurtosis = float(np.mean((seg - seg.mean()) ** 4) / np.mean((seg - seg.mean()) ** 2) ** 2)
        assert abs(got[4] / 256 - float_kurtosis) < 0.02


def test_plain_python_kernels_give_the_viper_results(viper: dict[str, Any], tmp_path: Path) -> None:
    plain = _run(tmp_path, "python")
    assert (viper["impl"], plain["impl"]) == ("viper", "python")
    for key in ("lowpass", "dc", "decimated", "spectra", "energies", "features"):
        assert plain[key] == viper[key], key


def test_dsp_chain_allocates_nothing_per_window() -> None:
    result = json.loads(run_micropython("dsp_alloc.py"))
    assert (result["impl"], result["bytes"]) == ("viper", 0)
