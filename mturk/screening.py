"""Screening before rating: consent, volume calibration and a headphone check, as one MTurk
qualification test (a ``QuestionForm`` ``Test`` with an ``AnswerKey``). MTurk scores it itself; our
server scores it with ``eval_server/qual_tests.py``; the HITs require the qualification's value.

The headphone check is the antiphase test of Woods, Siegel, Traer & McDermott (2017), "Headphone
screening to facilitate web-based auditory experiments", Attention, Perception & Psychophysics
79:2064-2072. Each trial plays three 200 Hz pure tones and asks which was the quietest:

- the *standard*: both channels in phase, at the reference level;
- the *target*: both channels in phase, 6 dB below the standard (the correct answer);
- the *foil*: the standard's level in each channel, but the right channel phase-inverted (180°).

Over headphones each ear gets its channel, so the foil is as loud as the standard and the target
is the quietest. Over loudspeakers the two channels meet in the air and the antiphase foil largely
cancels (the paper measured more than 20 dB at 200 Hz), so a loudspeaker listener hears the foil
as the quietest and answers wrong. Six trials; passing takes at least 5 correct, the paper's
criterion. Parameters from the paper: 200 Hz, 1000 ms tones, 100 ms raised-cosine on/off ramps,
-6 dB target, 6 trials, 5 to pass. Our choices: 500 ms of silence between the tones, each of the
six orders of (standard, target, foil) used once in a seeded shuffle (so the answer is 1, 2 and 3
equally often), 44.1 kHz 16-bit stereo WAV, and the standard's loudness equal to the calibration
noise's (ITU-R BS.1770, measured with pyloudnorm) so the volume a rater sets on the calibration
sound is the volume of the test.

``check="huggins"`` uses instead the Huggins-pitch test of Milne, Bianco, Poole, Zhao, Oxenham,
Billig & Chait (2021), "An online headphone screening test based on dichotic pitch", Behavior
Research Methods 53:1551-1562: three 1000 ms intervals of Gaussian white noise (44.1 kHz), two
diotic, one with the right ear's noise phase-inverted (180°) in a band of ±6% around 600 Hz. Over
headphones that interval carries a faint 600 Hz pitch, and neither ear alone has any cue to it;
over loudspeakers it is gone. Which interval had the tone? Six trials. Our choices: 500 ms gaps, 10 ms
raised-cosine ramps against clicks, each position of the tone used twice, and 6 of 6 to pass (the
default of the published implementations of the test; ``pass_correct`` changes it).

Everything is generated here with numpy from the study's seed: nothing is downloaded.

Scoring (the qualification value): "I agree" to the consent question scores ``CONSENT_SCORE`` (10),
each correct headphone trial 1, so the value is ``10 * consented + correct`` and a HIT requires at
least ``10 + 5``. The value alone tells `report` why a rater was screened out (declined consent, or
k of 6 correct), on MTurk (ListWorkersWithQualificationType) as on our server.
"""

from __future__ import annotations

import csv
import hashlib
import html
import itertools
import logging
import random
import re
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

import numpy as np

from regnet.atomic import atomic_path
from regnet.errors import UserError

log = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
TONE_HZ = 200.0
TONE_S = 1.0
RAMP_S = 0.1
GAP_S = 0.5
TARGET_DB = -6.0
N_TRIALS = 6
PASS_CORRECT = 5
CALIBRATION_S = 5.0
DEFAULT_LUFS = -23.0  # EBU R128 programme level, when the study states no target
PEAK_LIMIT_DBFS = -1.0
CONSENT_SCORE = 10
HEADPHONE_CHECKS = ("woods", "huggins")
HUGGINS_HZ = 600.0
HUGGINS_BAND = 0.06  # ± 6 % around HUGGINS_HZ
HUGGINS_RAMP_S = 0.01
HUGGINS_PASS = 6
TEST_DURATION_S = 900
SCREENING_CSV = "screening.csv"
LEDGER_KEY = "screening_qual_id"

QF_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd"
AK_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/AnswerKey.xsd"
MAX_TEST_BYTES = 65_535

DEFAULT_CONSENT = (
    "You are invited to take part in a listening study run with regnet-bench. You will watch short "
    "videos and judge their sound. Taking part is voluntary; you may stop at any time by returning "
    "the task. We record your answers, your worker id and how long each task took, and nothing "
    "else; the answers are analysed and published without your worker id. Select 'I agree' to "
    "take part.")
DEFAULT_INSTRUCTIONS = (
    "Use headphones or earphones in a quiet place. Each task shows short videos: watch each to the "
    "end before you answer. Some questions have a known answer and check attention.")


@dataclass
class HeadphoneTrial:
    question_id: str  # hc1 .. hc6
    media: str  # opaque wav name in DIR/media (the name says nothing about the answer)
    # The three sounds in play order. Woods: S standard, T target (-6 dB), A antiphase foil;
    # Huggins: N diotic noise, H the noise carrying the Huggins pitch.
    order: str
    answer: str  # "1" | "2" | "3": where T (or H) is

    @classmethod
    def of(cls, k: int, media: str, order: str) -> "HeadphoneTrial":
        return cls(f"hc{k}", media, order, str(order.index("H" if "H" in order else "T") + 1))


@dataclass
class Screening:
    """What study.json ``screening`` holds. ``enabled``: a consent (+ check) qualification guards
    the HITs; ``headphone_check``: the Woods et al. trials are part of it."""

    enabled: bool = False
    headphone_check: bool = False
    check: str = "woods"  # woods (antiphase tones) | huggins (dichotic pitch)
    consent: str = DEFAULT_CONSENT
    instructions: str = DEFAULT_INSTRUCTIONS
    calibration_media: str = ""
    calibration_lufs: float = DEFAULT_LUFS
    trials: list[HeadphoneTrial] = field(default_factory=list)
    pass_correct: int = PASS_CORRECT
    version: str = ""  # content hash; names the qualification type

    @property
    def required_value(self) -> int:
        return CONSENT_SCORE + (self.pass_correct if self.headphone_check else 0)

    @property
    def media_names(self) -> list[str]:
        return [m for m in [self.calibration_media] + [t.media for t in self.trials] if m]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Screening":
        if not d:
            return cls()
        d = dict(d)
        trials = [HeadphoneTrial(**t) for t in d.pop("trials", [])]
        try:
            return cls(**d, trials=trials)
        except TypeError as e:
            raise UserError(f"study.json: screening: unknown or missing field ({e})") from None


# -- stimuli -------------------------------------------------------------------------------------
def ramped_tone(seconds: float = TONE_S, hz: float = TONE_HZ, sr: int = SAMPLE_RATE,
                ramp_s: float = RAMP_S) -> np.ndarray:
    """A unit-amplitude sine with raised-cosine onset and offset ramps (mono, float64)."""
    n = int(round(seconds * sr))
    x = np.sin(2 * np.pi * hz * np.arange(n) / sr)
    return x * _ramp(n, int(round(ramp_s * sr)))


def _ramp(n: int, n_ramp: int) -> np.ndarray:
    env = np.ones(n)
    if n_ramp:
        up = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_ramp) / n_ramp)
        env[:n_ramp] = up
        env[n - n_ramp:] = up[::-1]
    return env


def woods_trial(order: str, amplitude: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One trial's stereo signal [n, 2]: the tones of ``order`` (S/T/A) separated by GAP_S."""
    if sorted(order) != ["A", "S", "T"]:
        raise ValueError(f"order {order!r} must be a permutation of S, T, A")
    tone = amplitude * ramped_tone(sr=sr)
    gap = np.zeros((int(round(GAP_S * sr)), 2))
    parts = []
    for i, kind in enumerate(order):
        if i:
            parts.append(gap)
        if kind == "S":
            parts.append(np.stack([tone, tone], axis=1))
        elif kind == "T":
            t = tone * 10 ** (TARGET_DB / 20)
            parts.append(np.stack([t, t], axis=1))
        else:  # antiphase: the right channel is the left one inverted
            parts.append(np.stack([tone, -tone], axis=1))
    return np.concatenate(parts)


def calibration_noise(seed: int, sr: int = SAMPLE_RATE, seconds: float = CALIBRATION_S) -> np.ndarray:
    """Diotic (same in both ears) white noise with 100 ms ramps, unit RMS before ramps, [n, 2]."""
    rng = np.random.default_rng([seed, 808])
    n = int(round(seconds * sr))
    x = rng.standard_normal(n) * _ramp(n, int(round(RAMP_S * sr)))
    return np.stack([x, x], axis=1)


def loudness_lufs(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    import pyloudnorm

    return float(pyloudnorm.Meter(sr).integrated_loudness(x))


def scaled_to(x: np.ndarray, lufs: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` scaled to ``lufs`` integrated loudness; refuses a level that would clip."""
    y = x * 10 ** ((lufs - loudness_lufs(x, sr)) / 20)
    peak_db = 20 * np.log10(np.max(np.abs(y)) + 1e-12)
    if peak_db > PEAK_LIMIT_DBFS:
        raise UserError(f"screening: a calibration level of {lufs} LUFS peaks at {peak_db:.1f} dBFS; "
                        f"choose a lower target loudness")
    return y


def standard_amplitude(lufs: float, sr: int = SAMPLE_RATE) -> float:
    """Peak amplitude of the standard tone (both channels) whose loudness is ``lufs``."""
    tone = ramped_tone(sr=sr)
    stereo = np.stack([tone, tone], axis=1)
    return float(10 ** ((lufs - loudness_lufs(stereo, sr)) / 20))


def huggins_trial(target: int, seed: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One Huggins-pitch trial [n, 2] (unit-variance noise before scaling): interval ``target``
    (0..2) has the right channel phase-inverted in 600 Hz ± 6 %; the other two are diotic."""
    rng = np.random.default_rng([seed, 600, target])
    n = int(round(TONE_S * sr))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    band = (freqs >= HUGGINS_HZ * (1 - HUGGINS_BAND)) & (freqs <= HUGGINS_HZ * (1 + HUGGINS_BAND))
    env = _ramp(n, int(round(HUGGINS_RAMP_S * sr)))
    gap = np.zeros((int(round(GAP_S * sr)), 2))
    parts = []
    for i in range(3):
        if i:
            parts.append(gap)
        left = rng.standard_normal(n)
        right = left
        if i == target:
            spec = np.fft.rfft(left)
            spec[band] *= -1  # 180° in the band, the same magnitude everywhere
            right = np.fft.irfft(spec, n)
        parts.append(np.stack([left * env, right * env], axis=1))
    return np.concatenate(parts)


def huggins_orders(seed: int) -> list[str]:
    """Six trials, the tone in each interval twice, shuffled by ``seed``."""
    orders = ["HNN", "NHN", "NNH"] * 2
    random.Random(seed).shuffle(orders)
    return orders


def trial_orders(seed: int) -> list[str]:
    """The six orders of S, T, A, each once, shuffled by ``seed`` (the answer is 1, 2, 3 twice each)."""
    orders = ["".join(p) for p in itertools.permutations("STA")]
    random.Random(seed).shuffle(orders)
    return orders[:N_TRIALS]


def write_wav(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """16-bit PCM, written atomically."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with atomic_path(path, suffix=".wav") as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(x.shape[1] if x.ndim == 2 else 1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes(pcm.tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """[n, channels] float in [-1, 1] and the sample rate (for tests and the simulated listener)."""
    with wave.open(str(path), "rb") as w:
        sr, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        data = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float64) / 32767
    return data.reshape(-1, ch), sr


def build_screening(media_dir: str | Path, salt: str, seed: int, *, headphone_check: bool = True,
                    consent: str | None = None, instructions: str | None = None,
                    calibration_lufs: float | None = None, check: str = "woods") -> Screening:
    """Write the calibration noise and (with ``headphone_check``) the six trials into ``media_dir``
    under opaque names; return what study.json records."""
    from mturk.media import opaque_name

    lufs = DEFAULT_LUFS if calibration_lufs is None else float(calibration_lufs)
    consent = (consent if consent is not None else DEFAULT_CONSENT).strip()
    instructions = (instructions if instructions is not None else DEFAULT_INSTRUCTIONS).strip()
    if not consent:
        raise UserError("--consent: the consent text is empty")
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    cal_name = opaque_name(salt, "screening", "calibration", str(lufs), suffix=".wav")
    write_wav(media_dir / cal_name, scaled_to(calibration_noise(seed), lufs))
    if check not in HEADPHONE_CHECKS:
        raise UserError(f"--headphone-check: {check!r}; choose from {', '.join(HEADPHONE_CHECKS)}")
    trials: list[HeadphoneTrial] = []
    if headphone_check and check == "huggins":
        for k, order in enumerate(huggins_orders(seed), 1):
            name = opaque_name(salt, "screening", "huggins", str(k), order, str(lufs), suffix=".wav")
            write_wav(media_dir / name, scaled_to(huggins_trial(order.index("H"), seed * 100 + k), lufs))
            trials.append(HeadphoneTrial.of(k, name, order))
    elif headphone_check:
        amp = standard_amplitude(lufs)
        if 20 * np.log10(amp) > PEAK_LIMIT_DBFS:
            raise UserError(f"screening: at {lufs} LUFS the 200 Hz tones would clip; choose a lower target")
        for k, order in enumerate(trial_orders(seed), 1):
            name = opaque_name(salt, "screening", "headphone", str(k), order, str(lufs), suffix=".wav")
            write_wav(media_dir / name, woods_trial(order, amp))
            trials.append(HeadphoneTrial.of(k, name, order))
    s = Screening(enabled=True, headphone_check=headphone_check, check=check, consent=consent,
                  instructions=instructions, calibration_media=cal_name, calibration_lufs=lufs, trials=trials,
                  pass_correct=HUGGINS_PASS if check == "huggins" else PASS_CORRECT)
    s.version = hashlib.sha256(repr(asdict(s)).encode()).hexdigest()[:10]
    log.info("screening: consent, calibration at %.1f LUFS%s -> %s", lufs,
             f", {len(trials)} headphone-check trials" if trials else "", media_dir)
    return s


def read_consent_file(path: str | Path) -> str:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--consent: cannot read {p} ({getattr(e, 'strerror', None) or e})") from None
    if not text.strip():
        raise UserError(f"--consent: {p} is empty")
    return text


# -- QuestionForm and AnswerKey ------------------------------------------------------------------
def _texts(text: str) -> str:
    """Plain-text paragraphs (QuestionForm ``Text`` allows no markup)."""
    paras = [" ".join(p.split()) for p in text.split("\n\n")]
    return "".join(f"<Text>{escape(p)}</Text>" for p in paras if p)


def _audio(url: str, alt: str) -> str:
    sub = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else "wav"
    return (f"<EmbeddedBinary><EmbeddedMimeType><Type>audio</Type><SubType>{escape(sub)}</SubType>"
            f"</EmbeddedMimeType><DataURL>{escape(url)}</DataURL><AltText>{escape(alt)}</AltText>"
            f"<Width>300</Width><Height>40</Height></EmbeddedBinary>")


def _selection_question(qid: str, content: str, choices: list[tuple[str, str]]) -> str:
    sels = "".join(f"<Selection><SelectionIdentifier>{escape(i)}</SelectionIdentifier><Text>{escape(t)}</Text>"
                   f"</Selection>" for i, t in choices)
    return (f"<Question><QuestionIdentifier>{qid}</QuestionIdentifier><IsRequired>true</IsRequired>"
            f"<QuestionContent>{content}</QuestionContent><AnswerSpecification><SelectionAnswer>"
            f"<StyleSuggestion>radiobutton</StyleSuggestion><Selections>{sels}</Selections>"
            f"</SelectionAnswer></AnswerSpecification></Question>")


CONSENT_CHOICES = [("agree", "I agree to take part"), ("decline", "I do not agree")]
VOLUME_CHOICES = [("set", "I have set a comfortable volume and will not change it during the study")]
WOODS_TASK = ("Each sound below plays three tones separated by silences. Play each one once and say "
              "which of the three tones was the QUIETEST (softest).")
HUGGINS_TASK = ("Each sound below plays three bursts of noise separated by silences. One of them has a "
                "faint tone hidden in it. Play each sound once and say which noise had the tone.")
HUGGINS_CHOICES = [("1", "The FIRST noise had the tone"), ("2", "The SECOND noise had the tone"),
                   ("3", "The THIRD noise had the tone")]
TONE_CHOICES = [("1", "The FIRST sound was the quietest"), ("2", "The SECOND sound was the quietest"),
                ("3", "The THIRD sound was the quietest")]


def question_form(s: Screening, media_base: str, title: str = "Before you start") -> str:
    """The qualification test: consent (with the study's instructions), volume calibration, then
    the headphone check. Order matters: each question carries its own text and sound, so a form
    renderer that lists questions in order shows them in this order."""
    base = media_base if media_base.endswith("/") else media_base + "/"
    parts = [f'<QuestionForm xmlns="{QF_NS}"><Overview><Title>{escape(title)}</Title>'
             "<Text>Three short steps: consent, setting your volume, and a check that you are "
             "listening over headphones.</Text></Overview>"]
    parts.append(_selection_question(
        "consent", "<Title>1. Consent and instructions</Title>" + _texts(s.consent) + _texts(s.instructions),
        CONSENT_CHOICES))
    parts.append(_selection_question(
        "volume", "<Title>2. Volume</Title>" + _texts(
            "Put on your headphones and set your computer's volume to about a quarter of its maximum. "
            "Play the calibration sound below and adjust the volume until it is loud but comfortable. "
            "Do not change the volume afterwards, in this test or in the tasks.")
        + _audio(base + s.calibration_media, "calibration noise"), VOLUME_CHOICES))
    task, choices = ((HUGGINS_TASK, HUGGINS_CHOICES) if s.check == "huggins" else (WOODS_TASK, TONE_CHOICES))
    for k, t in enumerate(s.trials, 1):
        intro = "<Title>3. Headphone check</Title>" + _texts(task) if k == 1 else ""
        parts.append(_selection_question(
            t.question_id, intro + f"<Text>Sound {k} of {len(s.trials)}</Text>"
            + _audio(base + t.media, f"headphone check sound {k}"), choices))
    parts.append("</QuestionForm>")
    doc = "".join(parts)
    if len(doc.encode("utf-8")) > MAX_TEST_BYTES:
        raise UserError(f"--consent: the qualification test is {len(doc.encode('utf-8'))} bytes with this "
                        f"consent text, over MTurk's {MAX_TEST_BYTES}; shorten it")
    return doc


def answer_key(s: Screening) -> str:
    def q(qid: str, options: list[tuple[str, int]]) -> str:
        opts = "".join(f"<AnswerOption><SelectionIdentifier>{escape(i)}</SelectionIdentifier>"
                       f"<AnswerScore>{score}</AnswerScore></AnswerOption>" for i, score in options)
        return f"<Question><QuestionIdentifier>{qid}</QuestionIdentifier>{opts}</Question>"

    body = q("consent", [("agree", CONSENT_SCORE)]) + q("volume", [("set", 0)])
    body += "".join(q(t.question_id, [(t.answer, 1)]) for t in s.trials)
    return f'<AnswerKey xmlns="{AK_NS}">{body}</AnswerKey>'


@dataclass(frozen=True)
class Outcome:
    consented: bool
    correct: int
    passed: bool
    reason: str


def decode(value: int, s: Screening) -> Outcome:
    """What a qualification value says (see the module docstring)."""
    consented = value >= CONSENT_SCORE
    correct = value - CONSENT_SCORE if consented else value
    n = len(s.trials)
    if not consented:
        return Outcome(False, correct, False, "declined consent")
    if s.headphone_check and correct < s.pass_correct:
        return Outcome(True, correct, False, f"headphone check failed ({correct} of {n} correct, "
                                             f"{s.pass_correct} needed)")
    return Outcome(True, correct, True, "passed" + (f" ({correct} of {n} correct)" if s.headphone_check else ""))


# -- the simulated listener (quickstart demos, tests) --------------------------------------------
def listen(x: np.ndarray, sr: int, headphones: bool = True) -> str:
    """Which of the three tones a listener finds quietest: over headphones each ear hears its own
    channel (the level is the channels' mean power); over loudspeakers the channels sum in the air
    (modelled as L + R), which cancels the antiphase tone. Returns "1" | "2" | "3"."""
    levels = [np.mean(seg ** 2) if headphones else np.mean(seg.sum(axis=1) ** 2) for seg in _intervals(x, sr)]
    return str(int(np.argmin(levels)) + 1)


def listen_huggins(x: np.ndarray, sr: int, headphones: bool, rng: np.random.Generator) -> str:
    """Which noise had the tone: binaural hearing finds the interval whose ears differ (the lowest
    interaural correlation); over loudspeakers the pitch is gone and the listener guesses."""
    if not headphones:
        return str(int(rng.integers(3)) + 1)
    corr = [np.corrcoef(seg[:, 0], seg[:, 1])[0, 1] for seg in _intervals(x, sr)]
    return str(int(np.argmin(corr)) + 1)


def _intervals(x: np.ndarray, sr: int) -> list[np.ndarray]:
    step, n = int(round((TONE_S + GAP_S) * sr)), int(round(TONE_S * sr))
    return [x[i * step:i * step + n] for i in range(3)]


def simulated_answers(s: Screening, media_dir: str | Path, headphones: bool = True, seed: int = 0) -> dict[str, str]:
    """The test answers of a simulated rater who listens to the study's own files."""
    out = {"consent": "agree", "volume": "set"}
    rng = np.random.default_rng([seed, 809])
    for t in s.trials:
        x, sr = read_wav(Path(media_dir) / t.media)
        out[t.question_id] = (listen_huggins(x, sr, headphones, rng) if s.check == "huggins"
                              else listen(x, sr, headphones))
    return out


# -- publishing ----------------------------------------------------------------------------------
def of(study) -> Screening:
    """The study's screening (disabled for a study built without one)."""
    return Screening.from_dict(getattr(study, "screening", None))


def qual_name(study) -> str:
    return f"regnet-bench screening for {study.name} ({study.uid}-{of(study).version})"


def ledger_key(study) -> str:
    return f"{LEDGER_KEY}:{of(study).version}"


def requirement(qual_id: str, s: Screening) -> dict:
    # PreviewAndAccept: workers still find the HITs (and, on MTurk, the link to the test) but cannot
    # open or take one before passing.
    return {"QualificationTypeId": qual_id, "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [s.required_value], "ActionsGuarded": "PreviewAndAccept"}


def check_media_base(media_base: str, target_label: str) -> None:
    if target_label != "custom" and not media_base.startswith(("http://", "https://")):
        raise UserError(f"--media-base-url: {media_base!r}: MTurk's qualification test needs absolute "
                        "http(s) URLs for its sounds")


def ensure_qual(client, study, ledger, target, media_base: str) -> str:
    """Create the screening qualification type (test + answer key) once per endpoint; the ledger
    remembers it, and a run that died before writing the ledger finds it again by name."""
    from mturk.client import ensure_qualification_type

    key = ledger_key(study)
    if qid := ledger.get(target.endpoint, study.name, key):
        return qid
    check_media_base(media_base, target.label)
    s = of(study)
    qid = ensure_qualification_type(
        client, ledger, target, study.name, key, qual_name(study), Keywords="regnet-bench, screening, headphones",
        Description="Consent, volume setting" + (" and a headphone check" if s.headphone_check else "")
                    + f" before the listening study {study.name}.",
        Test=question_form(s, media_base, study.title), AnswerKey=answer_key(s), TestDurationInSeconds=TEST_DURATION_S)
    log.info("screening qualification %s on %s", qid, target.endpoint)
    return qid


# -- collecting and reporting --------------------------------------------------------------------
SCREENING_COLUMNS = ["endpoint", "worker_id", "value", "consented", "correct", "n_trials", "required",
                     "passed", "reason"]


def fetch(study, ledger, client_for: Callable, out_path: str | Path) -> int:
    """Every worker who took the test (ListWorkersWithQualificationType, paginated) -> screening.csv.
    Returns the number of rows; 0 (and no file) when the study has no screening qualification."""
    from mturk.client import api_errors, resolve_target

    s = of(study)
    rows = []
    for endpoint in ledger.endpoints(study.name):
        qid = ledger.get(endpoint, study.name, ledger_key(study))
        if not qid:
            continue
        tgt = resolve_target(endpoint_url=endpoint)
        client = client_for(tgt)
        kwargs: dict = {"QualificationTypeId": qid, "MaxResults": 100}
        with api_errors(tgt, "ListWorkersWithQualificationType"):
            while True:
                page = client.list_workers_with_qualification_type(**kwargs)
                for q in page.get("Qualifications", []):
                    o = decode(int(q.get("IntegerValue", 0)), s)
                    rows.append({"endpoint": endpoint, "worker_id": q["WorkerId"], "value": q.get("IntegerValue", 0),
                                 "consented": int(o.consented), "correct": o.correct, "n_trials": len(s.trials),
                                 "required": s.required_value, "passed": int(o.passed), "reason": o.reason})
                if not page.get("NextToken") or not page.get("Qualifications"):
                    break
                kwargs["NextToken"] = page["NextToken"]
    if not rows and not any(ledger.get(e, study.name, ledger_key(study)) for e in ledger.endpoints(study.name)):
        return 0
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=SCREENING_COLUMNS)
            w.writeheader()
            w.writerows(sorted(rows, key=lambda r: (r["endpoint"], r["worker_id"])))
    return len(rows)


def summary_rows(path: str | Path, check_name: str = "Woods et al. 2017 antiphase tones"
                 ) -> tuple[list[tuple[str, int]], list[str]]:
    """(outcome, raters) rows and notes for the report, from screening.csv."""
    from regnet.tables import read_table

    df = read_table(path, "the screening results collect writes", required=SCREENING_COLUMNS,
                    dtype={"worker_id": str, "reason": str}, keep_default_na=False)
    passed = df[df["passed"].astype(int) == 1]
    failed = df[df["passed"].astype(int) == 0]
    declined = failed[failed["consented"].astype(int) == 0]
    headphones = failed[failed["consented"].astype(int) == 1]
    rows = [("took the screening test", len(df)), ("passed", len(passed)),
            ("screened out: declined consent", len(declined)),
            ("screened out: failed the headphone check", len(headphones))]
    notes = [f"Screening: consent, volume calibration and a headphone check ({check_name}; "
             f"{int(df['n_trials'].max()) if len(df) else N_TRIALS} trials, at least "
             f"{int(df['required'].max()) - CONSENT_SCORE if len(df) else PASS_CORRECT} correct to pass), "
             "taken once before any HIT; only raters who passed could accept a HIT."]
    if len(headphones):
        dist = headphones["correct"].astype(int).value_counts().sort_index()
        notes.append("Failed the headphone check with " + ", ".join(f"{k} correct: {v}" for k, v in dist.items()) + ".")
    return rows, notes


CHECK_NAMES = {"woods": "Woods et al. 2017 antiphase tones", "huggins": "Milne et al. 2021 Huggins pitch"}


def _study_check(directory: Path) -> str:
    import json

    try:
        return (json.loads((directory / "study.json").read_text()).get("screening") or {}).get("check", "woods")
    except (OSError, ValueError, AttributeError):
        return "woods"


def report_table(path: str | Path):
    """screening.csv as a report table (mturk.report.tables.Table)."""
    import pandas as pd

    from mturk.report.tables import Table

    check = _study_check(Path(path).parent)
    rows, notes = summary_rows(path, CHECK_NAMES.get(check, check))
    data = pd.DataFrame(rows, columns=["outcome", "raters"])
    display = data.rename(columns={"outcome": "Screening", "raters": "raters"}).astype(str)
    return Table("table_screening", "Screening — who was let in, who was screened out and why", data, display, notes)


@dataclass
class ScreeningOptions:
    """What `attach` puts before a study's HITs (build-study's --no-screening, --no-headphone-check,
    --headphone-check, --consent and --instructions)."""
    enabled: bool = True
    headphone_check: bool = True
    check: str = "woods"
    consent: str | None = None
    instructions: str | None = None


def describe(scr: Screening) -> str:
    """One line for the requester: what a rater goes through before any HIT."""
    if not scr.enabled:
        return "none (--no-screening)"
    check = (f" + {scr.check} headphone check ({len(scr.trials)} trials, {scr.pass_correct} to pass)"
             if scr.headphone_check else "")
    return (f"consent + volume calibration{check}, a qualification test every HIT requires "
            f"(value >= {scr.required_value})")


def attach(study, *, enabled: bool = True, headphone_check: bool = True, consent: str | None = None,
           instructions: str | None = None, calibration_lufs: float | None = None, check: str = "woods") -> Screening:
    """Add the screening to a built study (media into DIR/media, ``screening`` into study.json)."""
    from mturk.study import save_study

    if not enabled:
        study.screening = {}
    else:
        s = build_screening(Path(study.directory) / "media", f"{study.name}:{study.seed}", study.seed,
                            headphone_check=headphone_check, consent=consent, instructions=instructions,
                            calibration_lufs=calibration_lufs, check=check)
        study.screening = s.to_dict()
    save_study(study, study.directory)
    return of(study)


# -- simulated raters take the test the way a person's browser does ------------------------------
_HIDDEN = re.compile(r"<input[^>]*type=['\"]hidden['\"][^>]*>", re.I)
_ATTR = re.compile(r"(name|value)=(?:'([^']*)'|\"([^\"]*)\")", re.I)


def _hidden_fields(page: str) -> dict[str, str]:
    out = {}
    for tag in _HIDDEN.findall(page):
        attrs = {m.group(1).lower(): html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
                 for m in _ATTR.finditer(tag)}
        if "name" in attrs:
            out[attrs["name"]] = attrs.get("value", "")
    return out


def take_test(http, base_url: str, worker_id: str, type_id: str, answers: dict[str, str],
              timeout: float = 30, sign_in_url: str | None = None) -> None:
    """Sign in as ``worker_id`` on our server (by its personal link when the server wants signed
    links), open the test page (its hidden fields carry the CSRF token) and post ``answers``, as
    the test page's form does. UserError when the server refuses."""
    import requests

    base = base_url.rstrip("/") + "/"
    try:
        if sign_in_url:
            r = http.get(sign_in_url, timeout=timeout)
        else:
            r = http.get(base + "worker", params={"workerId": worker_id}, timeout=timeout)
        if r.status_code >= 400:
            raise UserError(f"--endpoint-url: signing in as {worker_id} answered {r.status_code}: "
                            f"{r.text[:120].strip()}")
        r = http.get(base + "worker/qualification", params={"typeId": type_id}, timeout=timeout)
        if r.status_code != 200:
            raise UserError(f"screening test {type_id}: {r.status_code} {r.text[:120].strip()}")
        form = {**_hidden_fields(r.text), **answers}
        r = http.post(base + "worker/qualification", data=form, timeout=timeout)
    except requests.RequestException as e:
        raise UserError(f"--endpoint-url: cannot reach {base} ({type(e).__name__})") from None
    if r.status_code >= 400 and r.status_code != 409:  # 409: already taken
        raise UserError(f"screening test {type_id}: answer refused ({r.status_code}: {r.text[:120].strip()})")


def prepare_bots(endpoint_url: str, study, worker_ids: list[str], loudspeaker: set[str] = frozenset(),
                 session_factory=None, links: dict[str, str] | None = None) -> Callable:
    """A session factory for `mturk.simulate.client.run_bots`: each session has already taken the
    study's screening test as its bot (over headphones, or over loudspeakers for the ids in
    ``loudspeaker``, who then fail the check). Without a screening test on this endpoint the
    sessions are fresh."""
    import requests

    from mturk.client import resolve_target
    from mturk.ledger import Ledger

    make = session_factory or requests.Session
    s = of(study)
    qid = None
    if s.enabled and study.directory is not None and (Path(study.directory) / "ledger.sqlite").is_file():
        endpoint = resolve_target(endpoint_url=endpoint_url).endpoint
        with Ledger.for_study(study.directory) as led:
            qid = led.get(endpoint, study.name, ledger_key(study))
    sessions = []
    for w in worker_ids:
        http = make()
        if qid:
            answers = simulated_answers(s, Path(study.directory) / "media", headphones=w not in loudspeaker)
            take_test(http, endpoint_url, w, qid, answers, sign_in_url=(links or {}).get(w))
            log.info("%s took the screening test (%s)", w, "loudspeakers" if w in loudspeaker else "headphones")
        sessions.append(http)
    it = iter(sessions)
    return lambda: next(it, None) or make()
