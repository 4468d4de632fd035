"""The whole benchmark on the embedded default, stage by stage.

synth → extract → train RegNet and woREG → generate (RegNet, woREG, real sound) → evaluate →
build-study → local server → publish-hits (boto3) → [simulated raters → collect → report].

Each stage makes the library calls of the verb a user would type, and logs that verb (paths
relative to the workdir), so the quickstart is also a worked example of the CLI; each stage is
resumable because every library call is: a re-run skips what exists. The stages are separate methods so the end-to-end test can put a real browser
between publishing and collecting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from regnet.errors import UserError

if TYPE_CHECKING:
    from eval_server.server import ThreadedServer

log = logging.getLogger(__name__)

REGNET, WOREG, REAL = "regnet", "woreg", "real"


@dataclass
class QuickstartOptions:
    workdir: Path = Path("quickstart")
    preset: str = "small"
    n_per_class: int = 8
    seconds: float = 2.0
    steps: int = 800
    # The paper's 2e-4 is tuned for 1000 epochs; a few-hundred-step CPU run at 2e-4 stays near its
    # init and both models only learn the noise floor. Chosen on the training loss, as in `ablate`.
    lr: float = 1e-3
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 8000
    simulate: int = 3  # simulated raters after publishing (0: none, wait for people)
    serve: bool = True  # keep the server up at the end until Ctrl-C
    trials_per_hit: int = 4
    overrides: list[str] = field(default_factory=list)  # extra --set for every model verb


@dataclass
class LocalServer:
    url: str
    key: str
    secret: str
    admin_token: str
    running: "ThreadedServer" = field(repr=False)

    def wait(self) -> None:
        self.running.wait()

    def close(self) -> None:
        self.running.close()


class Quickstart:
    def __init__(self, opts: QuickstartOptions, say: Callable[[str], None] = log.info):
        self.o = opts
        self.say = say  # where a user reads the stages' results (the quickstart verb prints them)
        self.wd = Path(opts.workdir).resolve()
        self.wd.mkdir(parents=True, exist_ok=True)
        self.synth = self.wd / "synth"
        self.manifest = self.synth / "manifest.csv"
        self.features = self.wd / "features"
        self.runs = self.wd / "runs"
        self.clips = self.wd / "clips"
        self.results = self.wd / "results"
        self.study = self.wd / "study"
        self.db_url = f"sqlite:///{self.wd / 'server.sqlite'}"

    # -- plumbing ------------------------------------------------------------------------------
    def _as_typed(self, *argv: object) -> str:
        """The verb a user would type for this stage, paths relative to the workdir: the quickstart
        logs it, so it is also a worked example of the CLI, and results cite it."""
        def rel(a: object) -> str:
            if isinstance(a, Path):
                try:
                    return str(a.relative_to(self.wd))
                except ValueError:
                    return str(a)
            return str(a)
        return "regnet-bench " + " ".join(shlex.quote(rel(a)) for a in argv)

    def _stage(self, *argv: object) -> str:
        cmd = self._as_typed(*argv)
        log.info("$ %s   (in %s)", cmd, self.wd)
        return cmd

    def _model_args(self) -> list[str]:
        out = ["--preset", self.o.preset]
        for s in self.o.overrides:
            out += ["--set", s]
        return out

    def _config(self, *overrides: str):
        from regnet.config import load_config

        return load_config(None, self.o.preset, [*self.o.overrides, *overrides])

    def _say(self, stage: str, where: Path | str) -> None:
        self.say(f"[quickstart] {stage}: {where}")

    # -- stages --------------------------------------------------------------------------------
    def make_data(self) -> None:
        from regnet.data.extract import extract_manifest
        from regnet.data.synth import SynthConfig, make_synth

        if not self.manifest.is_file():
            self._stage("synth", "--out", self.synth, "--seed", self.o.seed, "--n-per-class",
                        self.o.n_per_class, "--seconds", self.o.seconds, "--irrelevant", "gauss")
            make_synth(self.synth, SynthConfig(seed=self.o.seed, n_per_class=self.o.n_per_class,
                                               seconds=self.o.seconds, irrelevant="gauss"))
        self._say("synthetic benchmark", self.manifest)
        self._stage("extract", "--manifest", self.manifest, "--out", self.features, *self._model_args())
        rep = extract_manifest(self.manifest, self.features, self._config().data)
        if rep.failed:
            vid, why = rep.failed[0]
            raise UserError(f"quickstart: extract: {len(rep.failed)} video(s) failed, e.g. {vid}: {why}")
        self._say("features", f"{self.features} ({rep.summary()}; config hash {rep.config_hash})")

    def train(self) -> None:
        from regnet.device import resolve_device
        from regnet.train.run import train_runs

        for system, extra in ((REGNET, []), (WOREG, ["model.regularizer=none"])):
            out = self.runs / system
            resume = (out / "last.pt").is_file()
            overrides = [f"train.lr={self.o.lr}", *extra]
            self._stage("train", "--manifest", self.manifest, "--features", self.features, "--out", out,
                        "--all-classes", "--steps", self.o.steps, "--seed", self.o.seed, *self._model_args(),
                        *[a for o in overrides for a in ("--set", o)], *(["--resume"] if resume else []))
            cfg = self._config(*overrides)
            cfg.train.seed, cfg.train.max_steps = self.o.seed, self.o.steps
            train_runs(cfg, self.manifest, self.features, out, all_classes=True, resume=resume,
                       device=resolve_device("auto"))
            self._say(f"{system} checkpoint", out / "last.pt")

    def generate(self) -> None:
        from regnet.device import resolve_device
        from regnet.generation import generate_clips, import_real

        for system in (REGNET, WOREG):
            self._stage("generate", "--checkpoint", self.runs / system / "last.pt", "--videos", self.manifest,
                        "--split", "test", "--out", self.clips / system, "--system", system,
                        "--features", self.features, "--seed", self.o.seed)
            self._check(generate_clips(self.runs / system / "last.pt", self.manifest, self.clips / system,
                                       system=system, split="test", device=resolve_device("auto"),
                                       seed=self.o.seed, features_dir=self.features), "generate")
            self._say(f"{system} clips", self.clips / system / "clips.csv")
        if not (self.clips / REAL / "clips.csv").is_file():
            self._stage("import-clips", "--system", REAL, "--manifest", self.manifest, "--split", "test",
                        "--out", self.clips / REAL, *self._model_args())
            self._check(import_real(self.manifest, self.clips / REAL, self._config().data, split="test"),
                        "import-clips")
        self._say("real-sound clips", self.clips / REAL / "clips.csv")

    @staticmethod
    def _check(report, what: str) -> None:
        for vid, why in report.failed:
            log.error("skipped %s: %s", vid, why)
        if report.failed or report.clips_csv is None:
            raise UserError(f"quickstart: {what}: {len(report.failed)} clip(s) failed (reasons above)")

    def clip_manifests(self) -> list[Path]:
        return [self.clips / s / "clips.csv" for s in (REGNET, WOREG, REAL)]

    def evaluate(self) -> None:
        from regnet.config import DataConfig
        from regnet.metrics.evaluate import EvaluateOptions, data_config_for_clips, evaluate, write_results

        clips = self.clip_manifests()
        cmd = self._stage("evaluate", "--clips", *clips, "--reference", "clean", "--manifest", self.manifest,
                          "--out", self.results)
        cfg = data_config_for_clips(DataConfig(), clips, explicit=False)
        result = evaluate(clips, cfg, EvaluateOptions(reference="clean"), manifest=self.manifest)
        write_results(result, self.results, cmd)
        self._say("objective metrics", self.results / "objective.md")

    @property
    def assignments(self) -> int:
        """Assignments per HIT: one more than the simulated raters take, so the "Raters start at"
        link still has work for a person after the bots are done (the paper's 3 without bots)."""
        return self.o.simulate + 1 if self.o.simulate > 0 else 3

    def study_options(self):
        from mturk.trials import StudyOptions

        return StudyOptions(name="quickstart", seed=self.o.seed, trials_per_hit=self.o.trials_per_hit,
                            max_assignments=self.assignments)

    def build_study(self) -> None:
        from mturk.trials import build_screened_study

        if not (self.study / "study.json").is_file():
            opts = self.study_options()
            self._stage("build-study", "--clips", *self.clip_manifests(), "--out", self.study, "--seed", opts.seed,
                        "--trials-per-hit", opts.trials_per_hit, "--assignments", opts.max_assignments,
                        "--name", opts.name)
            for line in build_screened_study(self.clip_manifests(), self.study, opts)[1]:
                self.say(line)
        self._say("study", self.study / "study.json")

    def credentials(self) -> tuple[str, str]:
        """Requester key/secret of the local server, made once and kept in the workdir."""
        path = self.wd / "server.env"
        if path.is_file():
            env = dict(line.split("=", 1) for line in path.read_text().split() if "=" in line)
            return env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        key, secret = "AK" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
        path.write_text(f"AWS_ACCESS_KEY_ID={key}\nAWS_SECRET_ACCESS_KEY={secret}\n")
        path.chmod(0o600)
        return key, secret

    @contextlib.contextmanager
    def server(self) -> Iterator[LocalServer]:
        from eval_server.config import ServerConfig
        from eval_server.server import build_app, start_in_thread

        key, secret = self.credentials()
        config = ServerConfig(db_url=self.db_url, media_dirs=(self.study / "media",), requester_key=key,
                              requester_secret=secret)
        app, resolved, _ = build_app(config)
        running = start_in_thread(app, self.o.host, self.o.port)
        s = LocalServer(running.url, key, secret, resolved.admin_token, running)
        self._say("local server", s.url)
        # publish/collect use boto3's default credential chain, as they would against MTurk.
        saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = key, secret
        try:
            yield s
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            s.close()

    def publish(self, srv: LocalServer) -> None:
        from mturk.client import client_for, resolve_target
        from mturk.publish import PublishOptions, publish_study
        from mturk.study import load_study

        self._stage("publish-hits", "--study", self.study, "--endpoint-url", srv.url, "--media-base-url", "/media",
                    "--no-system-quals")
        study = load_study(self.study)
        study.qualifications.use_system = False  # a lab's own server has no MTurk system qualifications
        publish_study(study, self.study, resolve_target(endpoint_url=srv.url), PublishOptions(media_base_url="/media"),
                      client_for, say=self.say)
        self._say("published HITs (ledger)", self.study / "ledger.sqlite")

    def simulated_raters(self) -> tuple[int, int]:
        """(bots that answer, bots that listen over loudspeakers): the extra one fails the headphone
        check, so the report shows screening at work."""
        return self.o.simulate, 1

    def simulate(self, srv: LocalServer) -> None:
        from mturk.simulate.client import simulate_study
        from mturk.simulate.decide import MetricTable, RaterParams
        from mturk.simulate.sources import metrics_from_table
        from mturk.study import load_study
        from regnet.config import DataConfig

        n, speakers = self.simulated_raters()
        metrics = self.results / "objective_clips.csv"
        self._stage("simulate-raters", "--endpoint-url", srv.url, "--study", self.study, "--n", n, "--seed",
                    self.o.seed, "--metrics", metrics, "--loudspeaker-raters", speakers)
        study = load_study(self.study)
        per_clip, seconds = metrics_from_table(metrics, study.clip_seconds)
        rep = simulate_study(srv.url, study, MetricTable(per_clip), n, self.o.seed, RaterParams(),
                             clip_seconds=seconds or DataConfig().clip_seconds, loudspeaker_raters=speakers)
        for r in rep.results:
            self.say(f"{r.worker_id}\t{len(r.submitted)} HITs\t{r.answers} answers\t{len(r.skipped)} skipped")

    def collect(self, srv: LocalServer) -> Path:
        from mturk import screening
        from mturk.client import client_for, resolve_target
        from mturk.collect import collect
        from mturk.ledger import Ledger
        from mturk.study import load_study

        votes = self.study / "votes.csv"
        self._stage("collect", "--study", self.study, "--endpoint-url", srv.url)
        study = load_study(self.study)
        with Ledger.for_study(self.study) as ledger:
            res = collect(study, ledger, client_for, votes, resolve_target(endpoint_url=srv.url))
            screening.fetch(study, ledger, client_for, votes.parent / screening.SCREENING_CSV)
        self.say(f"{res.hits} HIT(s): {res.seen_assignments} assignment(s) seen, {res.new_assignments} new, "
                 f"{res.new_votes} vote(s) added -> {votes}")
        self._say("votes", votes)
        return votes

    def report(self, simulated: bool = False) -> None:
        from dataclasses import replace

        from mturk.qc import rules_in_force
        from mturk.report.build import ReportOptions, build_report, write_report
        from mturk.report.inputs import load_study, load_votes

        votes = self.study / "votes.csv"
        # Simulated raters answer in milliseconds, so the too-fast rule would drop every one of them.
        speed = ["--min-seconds-per-trial", "0"] if simulated else []
        cmd = self._stage("report", "--votes", votes, "--study", self.study, "--out", self.results, *speed)
        study = load_study(self.study)
        raw, source = load_votes(votes, study)
        rules, decisions = rules_in_force(votes, self.study)
        if simulated:
            rules = replace(rules, min_seconds_per_trial=0.0)
        opts = ReportOptions(rules=rules, real_system=(study.real_system if study else None) or "real",
                             command=cmd, decisions=decisions)
        write_report(build_report(raw, source, study, opts), self.results)
        self._say("report", self.results / "report.md")

    def next_steps(self, srv: LocalServer) -> str:
        env = self.wd / "server.env"
        room = (f"each HIT has {self.assignments} assignments and the {self.o.simulate} simulated raters took "
                f"{self.o.simulate}, so one per HIT is left for a person" if self.o.simulate > 0 else
                f"each HIT has {self.assignments} assignments, all left for people")
        return "\n".join([
            f"Raters start at: {srv.url}/worker  (a lab link: {srv.url}/worker?workerId=NAME)",
            f"  {room}; a rater first takes the screening test listed there (consent, volume, headphone check)",
            f"Admin page:      {srv.url}/admin  (token: {srv.admin_token})",
            "Then, in another terminal:",
            f"  set -a; . {env}; set +a",
            f"  regnet-bench collect --study {self.study} --endpoint-url {srv.url}",
            f"  regnet-bench report --votes {self.study / 'votes.csv'} --study {self.study} --out {self.results}",
        ])

    # -- all of it -----------------------------------------------------------------------------
    def run(self) -> None:
        self.make_data()
        self.train()
        self.generate()
        self.evaluate()
        self.build_study()
        with self.server() as srv:
            self.publish(srv)
            if self.o.simulate > 0:
                self.simulate(srv)
                self.collect(srv)
                self.report(simulated=True)
            self.say(self.next_steps(srv))
            if self.o.serve:
                self.say("Serving; Ctrl-C to stop.")
                srv.wait()
