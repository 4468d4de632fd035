"""Video/audio ingest: real files written with ffmpeg and read back."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from regnet.config import Config
from regnet.data.audio import load_audio
from regnet.data.extract import _pad_audio, extract_video
from regnet.data.video import pad_steps, pick_indices, probe, read_video, write_video
from regnet.errors import UserError

from tests.helpers.media import SR, square_frames, tone


def fast_paper_data():
    """Paper geometry (10 s, 21.5 fps, 860 frames) with CPU-cheap flow: a config change only."""
    d = Config().data
    d.flow_method = "farneback"
    d.flow_size = (64, 48)
    return d


def test_ten_second_clip_gives_paper_geometry(tmp_path):
    path = write_video(tmp_path / "ten.mp4", square_frames(300), 30, tone(10.0), SR)
    f = extract_video(path, fast_paper_data())
    assert f.mel.shape == (80, 860)
    assert f.rgb.shape == (215, 1024) and f.flow.shape == (215, 1024)
    assert f.visual.shape == (215, 2048)
    assert f.has_audio and f.duration_s == pytest.approx(10.0, abs=0.05)
    assert f.mel.max(axis=0).min() > 0.5  # the tone is heard in every frame


def test_pick_indices_nearest_timestamp():
    # 30 fps -> 21.5 fps: step k takes round(k * 30 / 21.5).
    idx = pick_indices(300, 30.0, 21.5, 215)
    assert len(idx) == 215 and idx[1] == 1 and idx[2] == 3 and idx[-1] == 299
    # Slower source: frames are reused for consecutive steps.
    idx = pick_indices(10, 10.0, 21.5, 43)
    assert list(idx[:5]) == [0, 0, 1, 1, 2]
    # A stream shorter than the clip gives fewer steps.
    assert len(pick_indices(30, 30.0, 21.5, 43)) == 22


def test_padding_repeats_the_video(tmp_path, tiny_config):
    frames = square_frames(30)  # 1 s at 30 fps -> 22 steps of the 43 a 2 s clip has
    path = write_video(tmp_path / "short.mp4", frames, 30, tone(1.0), SR)
    d = tiny_config.data
    d.flow_size = (64, 48)
    f = extract_video(path, d)
    assert f.rgb.shape[0] == d.n_steps == 43
    np.testing.assert_array_equal(f.rgb[22:43], f.rgb[0:21])
    np.testing.assert_array_equal(f.flow[22:43], f.flow[0:21])
    assert not np.array_equal(f.rgb[1], f.rgb[0])  # the square moves: frames differ
    d.pad_mode = "zero"
    z = extract_video(path, d)
    np.testing.assert_array_equal(z.rgb[:22], f.rgb[:22])
    assert not z.rgb[22:].any() and not z.flow[22:].any()
    # Zero padding leaves silence after the picture ends; repeat keeps the tone going.
    assert z.mel[:, -20:].max() == 0.0 and f.mel[:, -20:].max(axis=0).min() > 0.5


def test_audio_is_looped_with_the_picture(tiny_config):
    d = tiny_config.data
    wav = np.arange(30000, dtype=np.float32)
    out = _pad_audio(wav, 22, d)  # 22 steps = 22 / 21.5 s
    period = round(22 / 21.5 * SR)
    assert len(out) == 2 * SR
    np.testing.assert_array_equal(out[period:], out[:len(out) - period])
    assert out[period - 1] == period - 1  # cut at the picture's end before looping


def test_pad_steps_modes():
    x = np.arange(3)[:, None].astype(np.float32)
    assert pad_steps(x, 7, "repeat")[:, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert pad_steps(x, 5, "zero")[:, 0].tolist() == [0, 1, 2, 0, 0]
    assert pad_steps(x, 2, "repeat")[:, 0].tolist() == [0, 1]
    with pytest.raises(UserError, match="data.pad_mode"):
        pad_steps(x, 5, "mirror")


def test_stereo_48k_is_mono_22k(tmp_path):
    mono = load_audio(_wav(tmp_path / "m.wav", tone(1.0), SR), SR)
    stereo = load_audio(_wav(tmp_path / "s.wav", tone(1.0, 48000, channels=2), 48000), SR)
    assert stereo.ndim == 1 and stereo.dtype == np.float32
    assert len(stereo) == pytest.approx(SR, abs=2)
    # Same tone after downmix + resampling (edges excluded).
    np.testing.assert_allclose(stereo[500:-500], mono[500:len(stereo) - 500], atol=0.01)
    # Through a container (AAC in mp4): ffmpeg decodes, we downmix and resample.
    path = write_video(tmp_path / "st.mp4", square_frames(30), 30, tone(1.0, 48000, channels=2), 48000)
    assert probe(path).audio_sample_rate == 48000
    a = load_audio(path, SR, max_seconds=0.5)
    assert len(a) == SR // 2
    spec = np.abs(np.fft.rfft(a[2000:10000]))
    assert abs(np.argmax(spec) * SR / 8000 - 440) < 10


def _wav(path, data, sr):
    sf.write(path, data, sr, subtype="FLOAT")
    return path


def test_odd_fps_and_size(tmp_path, tiny_config):
    # 97x61 at 7.3 fps (yuv444p: odd sizes are legal there); nothing about it is special-cased.
    path = write_video(tmp_path / "odd.mp4", square_frames(15, w=97, h=61), 7.3, tone(2.1), SR,
                       pix_fmt="yuv444p")
    info = probe(path)
    assert info.size == (97, 61) and info.fps == pytest.approx(7.3, abs=0.01)
    d = tiny_config.data
    d.flow_size = (64, 48)
    f = extract_video(path, d)
    assert f.rgb.shape == (43, 1024) and f.mel.shape == (80, 172)
    assert f.duration_s == pytest.approx(15 / 7.3, abs=0.1)


@pytest.mark.parametrize("ext,codec,pix,acodec", [
    ("webm", "libvpx", "yuv420p", "libvorbis"),
    ("avi", "mjpeg", "yuvj444p", "pcm_s16le"),
    ("mkv", "ffv1", "yuv420p", "aac"),
])
def test_containers(tmp_path, ext, codec, pix, acodec):
    path = write_video(tmp_path / f"v.{ext}", square_frames(20), 20, tone(1.0), SR, codec=codec,
                       pix_fmt=pix, audio_codec=acodec)
    dec = read_video(path, 21.5, 2.0, (32, 24))
    assert dec.frames.shape[1:] == (24, 32, 3) and dec.src_frames == 20
    assert len(load_audio(path, SR)) == pytest.approx(SR, rel=0.05)


def test_bad_inputs_have_one_line_messages(tmp_path, tiny_config):
    d = tiny_config.data
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00junk" * 500)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    zero = write_video(tmp_path / "zero.mp4", np.zeros((0, 48, 64, 3), np.uint8), 30)
    one = write_video(tmp_path / "one.mp4", square_frames(1), 30, tone(1.0), SR)
    cases = {
        corrupt: "not a readable video/audio file",
        empty: "empty file",
        zero: "zero-length",
        one: "only one video frame",
        tmp_path / "missing.mp4": "file not found",
        _wav(tmp_path / "sound.wav", tone(1.0), SR): "no video stream",
    }
    for path, msg in cases.items():
        with pytest.raises(UserError) as e:
            extract_video(path, d)
        assert str(path) in str(e.value) and msg in str(e.value)
        assert "\n" not in str(e.value)


def test_video_without_audio_is_fine_here(tmp_path, tiny_config):
    path = write_video(tmp_path / "silent.mp4", square_frames(48), 24)
    d = tiny_config.data
    d.flow_size = (64, 48)
    f = extract_video(path, d)
    assert f.has_audio is False and not f.mel.any() and f.mel.shape == (80, d.mel_frames)
    with pytest.raises(UserError, match="no audio track"):
        load_audio(path, SR)
    # The sound may come from another file (generate: silent video + separate audio).
    g = extract_video(path, d, audio_path=_wav(tmp_path / "a.wav", tone(2.0), SR))
    assert g.has_audio and g.mel.max(axis=0).min() > 0.5
