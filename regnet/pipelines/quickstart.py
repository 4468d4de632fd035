"""The whole benchmark on the embedded default, stage by stage.

synth → extract → train RegNet and woREG → generate (RegNet, woREG, real sound) → evaluate →
build-study → local server → publish-hits (boto3) → [simulated raters → collect → report].

Each stage runs the same verb a user would type (through `regnet.cli.main`), so the quickstart is
also a worked example of the CLI, and each stage is resumable because every verb is: a re-run
skips what exists. The stages are separate methods so the end-to-end test can put a real browser
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
from typing import TYPE_CHECKING, Iterator

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
    def __init__(self, opts: QuickstartOptions):
        self.o = opts
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
    def _verb(self, *argv: object, ok: tuple[int, ...] = (0,)) -> int:
        from regnet.cli import main

        args = [str(a) for a in argv]
        log.info("$ regnet-bench %s", " ".join(shlex.quote(a) for a in args))
        rc = main(args)
        if rc not in ok:
            raise UserError(f"quickstart: `regnet-bench {' '.join(args[:1])}` failed (exit {rc}); "
                            f"see the messages above")
        return rc

    def _model_args(self) -> list[str]:
        out = ["--preset", self.o.preset]
        for s in self.o.overrides:
            out += ["--set", s]
        return out

    def _say(self, stage: str, where: Path | str) -> None:
        print(f"[quickstart] {stage}: {where}", flush=True)

    # -- stages --------------------------------------------------------------------------------
    def make_data(self) -> None:
        if not self.manifest.is_file():
            self._verb("synth", "--out", self.synth, "--seed", self.o.seed, "--n-per-class",
                       self.o.n_per_class, "--seconds", self.o.seconds, "--irrelevant", "gauss")
        self._say("synthetic benchmark", self.manifest)
        self._verb("extract", "--manifest", self.manifest, "--out", self.features, *self._model_args())
        self._say("features", self.features)

    def train(self) -> None:
        for system, extra in ((REGNET, []), (WOREG, ["--set", "model.regularizer=none"])):
            out = self.runs / system
            resume = ["--resume"] if (out / "last.pt").is_file() else []
            self._verb("train", "--manifest", self.manifest, "--features", self.features, "--out", out,
                       "--all-classes", "--steps", self.o.steps, "--seed", self.o.seed,
                       *self._model_args(), "--set", f"train.lr={self.o.lr}", *extra, *resume)
            self._say(f"{system} checkpoint", out / "last.pt")

    def generate(self) -> None:
        for system in (REGNET, WOREG):
            self._verb("generate", "--checkpoint", self.runs / system / "last.pt", "--videos", self.manifest,
                       "--split", "test", "--out", self.clips / system, "--system", system,
                       "--features", self.features, "--seed", self.o.seed)
            self._say(f"{system} clips", self.clips / system / "clips.csv")
        if not (self.clips / REAL / "clips.csv").is_file():
            self._verb("import-clips", "--system", REAL, "--manifest", self.manifest, "--split", "test",
                       "--out", self.clips / REAL, *self._model_args())
        self._say("real-sound clips", self.clips / REAL / "clips.csv")

    def clip_manifests(self) -> list[Path]:
        return [self.clips / s / "clips.csv" for s in (REGNET, WOREG, REAL)]

    def evaluate(self) -> None:
        self._verb("evaluate", "--clips", *self.clip_manifests(), "--manifest", self.manifest,
                   "--reference", "clean", "--out", self.results)
        self._say("objective metrics", self.results / "objective.md")

    @property
    def assignments(self) -> int:
        """Assignments per HIT: one more than the simulated raters take, so the "Raters start at"
        link still has work for a person after the bots are done (the paper's 3 without bots)."""
        return self.o.simulate + 1 if self.o.simulate > 0 else 3

    def build_study(self) -> None:
        if not (self.study / "study.json").is_file():
            self._verb("build-study", "--clips", *self.clip_manifests(), "--out", self.study,
                       "--seed", self.o.seed, "--trials-per-hit", self.o.trials_per_hit,
                       "--assignments", self.assignments, "--name", "quickstart")
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
        self._verb("publish-hits", "--study", self.study, "--endpoint-url", srv.url,
                   "--media-base-url", "/media", "--no-system-quals")
        self._say("published HITs (ledger)", self.study / "ledger.sqlite")

    def simulate(self, srv: LocalServer) -> None:
        # One more bot listens over loudspeakers: it fails the headphone check, so the report shows
        # screening at work.
        self._verb("simulate-raters", "--endpoint-url", srv.url, "--study", self.study, "--n",
                   self.o.simulate, "--seed", self.o.seed, "--metrics", self.results / "objective_clips.csv",
                   "--loudspeaker-raters", 1)

    def collect(self, srv: LocalServer) -> Path:
        self._verb("collect", "--study", self.study, "--endpoint-url", srv.url)
        votes = self.study / "votes.csv"
        self._say("votes", votes)
        return votes

    def report(self, simulated: bool = False) -> None:
        # Simulated raters answer in milliseconds, so the too-fast rule would drop every one of them.
        speed = ["--min-seconds-per-trial", "0"] if simulated else []
        self._verb("report", "--votes", self.study / "votes.csv", "--study", self.study, "--out", self.results,
                   *speed)
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
            print(self.next_steps(srv), flush=True)
            if self.o.serve:
                print("Serving; Ctrl-C to stop.", flush=True)
                srv.wait()
