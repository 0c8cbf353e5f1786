"""What every strategy answers, so the rest of modelambda asks it instead of testing its name.

A strategy is one class in one module (``strategies/<name>.py``) registered under the
``modelambda.strategies`` entry-point group. It answers, for a service spec:

- **spec**: its ``[strategy]`` keys with their defaults and checks (``read``), the local
  defaults that make ``--strategy NAME`` work on a spec that names another kind
  (``local_settings``), and its cross-checks with the rest of the spec (``check``);
- **runtime**: where the function finds the model (``source``: the settings compiled into
  ``modelambda.json``; the in-function part is a model source under ``runtime/sources/``),
  whether checksums are verified at load by default, the backend it runs;
- **build**: which model files the function carries, the layout of the artifacts (function
  zip, layers, image context), the size checks that apply, ``/tmp`` needed at run time;
- **local**: what ``up`` starts for it and what the function then gets (environment, mounts);
- **store**: the versioned model store it reads, if any;
- **deploy**: what ``deploy`` uploads (``deploy_uploads``), what it checks first
  (``deploy_check``) and the resources and permissions it adds to the SAM template
  (``deploy_resources``, on ``deploy/resources.py``'s ``TemplateBuilder``); ``deploy_keys``
  names the ``[strategy]`` keys only deploy reads, which the function's config leaves out.

A SnapStart or provisioned-concurrency variant is an option applied to a strategy, not a
strategy of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelambda.spectable import Problems, Table

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder
    from modelambda.local.resources import LocalServices
    from modelambda.modelstore import Store
    from modelambda.package.archive import Entry
    from modelambda.package.artifacts import Artifact, BuildResult, Parts
    from modelambda.package.checks import Check
    from modelambda.runtime.config import RuntimeConfig
    from modelambda.spec import ServiceSpec


@dataclass
class LocalSetup:
    """What a function needs from its strategy's local services."""

    environment: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)  # path inside -> host directory


class Strategy:
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line: where the model lives
    # the in-function model source (runtime/sources/...), "module:Class"
    runtime_source: ClassVar[str] = ""
    # [model] verify_checksums when the spec does not say: sha256 of every model file at
    # load. On for models that travel at run time (S3); off where the artifact itself is
    # checked by Lambda (zip, layer, image) or a full read would cost every cold start (EFS).
    verify_checksums: ClassVar[bool] = False
    # How far a build's import check goes (package/importcheck.py): "init" runs the
    # handler's init from the artifact; "beside" with the built model placed beside it (the
    # model is not in the artifact); "imports" imports the backend and hooks only.
    import_check: ClassVar[str] = "init"
    # [strategy] keys that only deploy reads (not compiled into the function's config)
    deploy_keys: ClassVar[frozenset[str]] = frozenset()

    # --- spec -------------------------------------------------------------------------

    def read(self, table: Table) -> dict[str, Any]:
        """This strategy's ``[strategy]`` keys with defaults; problems go to the table."""
        return {}

    def local_settings(self, spec: ServiceSpec) -> dict[str, Any]:
        """Settings when the spec's ``[strategy]`` names another kind: the defaults, plus
        whatever a local run derives from the service (e.g. a bucket name)."""
        problems = Problems()
        settings = self.read(Table("strategy", {}, problems))
        return settings

    def check(self, spec: ServiceSpec, problems: Problems) -> None:
        """Cross-checks between this strategy and the rest of the spec."""

    # --- runtime ----------------------------------------------------------------------

    def source(self, spec: ServiceSpec) -> dict[str, Any]:
        """The model-source settings compiled into the function's config (whether checksums
        are verified is the config's ``model.verify_checksums``, not a source setting)."""
        return {"kind": self.name, "class": self.runtime_source, "path": spec.model.path}

    def configure(self, config: RuntimeConfig, spec: ServiceSpec) -> None:
        """Last changes to the compiled config (e.g. the endpoint's backend)."""

    def requirements_key(self, spec: ServiceSpec) -> str:
        """Which backend's packages the function needs (``package.deps``)."""
        return spec.model.framework

    def shipped_code(self) -> list[Entry]:
        """Extra files for the task root besides modelambda's runtime (a plugin's own model
        source, say): what ships must be importable inside the function."""
        return []

    # --- build ------------------------------------------------------------------------

    def model_entries(self, spec: ServiceSpec, model: list[Entry]) -> list[Entry]:
        """The model files the function or its store holds (before ONNX optimisation)."""
        return model

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        """Which file goes into which artifact, at which path."""
        raise NotImplementedError

    def tmp_needed(self, model: list[Entry]) -> int:
        """Bytes of ``/tmp`` the function needs at run time."""
        return 0

    def size_checks(self, function: Artifact, layers: list[Artifact], *,
                    zipped: bool, image_base_bytes: int) -> list[Check]:
        from modelambda.package import checks

        return checks.zip_checks(
            function.unzipped_bytes, function.zipped_bytes if zipped else None,
            [(a.name, a.unzipped_bytes, a.zipped_bytes if zipped else None) for a in layers])

    def size_fixes(self, model_bytes: int) -> list[str]:
        """What would bring an artifact that is too big under the limit, besides the
        generic fixes (quantise, exclude packages)."""
        return []

    def write(self, function: Artifact, layers: list[Artifact], spec: ServiceSpec,
              architecture: str) -> None:
        """Write the artifacts (reproducible zips; an image strategy writes its context)."""
        from modelambda.package.archive import write_zip

        for artifact in (function, *layers):
            artifact.sha256 = write_zip(artifact.path, artifact.entries)
            artifact.zipped_bytes = artifact.path.stat().st_size

    # --- local (``up``) -----------------------------------------------------------------

    def start_local(self, spec: ServiceSpec, services: LocalServices) -> LocalSetup:
        """Start what this strategy needs locally; say what the function gets."""
        return LocalSetup()

    # --- model store --------------------------------------------------------------------

    def store(self, spec: ServiceSpec, s3_client: Any = None) -> Store | None:
        """The versioned model store the function reads, or None when the model ships
        with the function."""
        return None

    # --- deploy -------------------------------------------------------------------------

    def deploy_check(self, spec: ServiceSpec, problems: Problems) -> None:
        """What a deploy needs that a local run does not (e.g. a real endpoint URL)."""

    def deploy_uploads(self, spec: ServiceSpec, build: BuildResult) -> list[Artifact]:
        """The built files deploy uploads to the artifact bucket, in order: the function's
        zip and its layers (content-addressed keys: ``deploy.template.content_key``)."""
        return [a for a in build.artifacts if a.kind in ("function", "layer")]

    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """Add this strategy's resources to the template, and the permissions the function
        needs for them (``template.allow``). The default: the function's code is its zip."""
        template.zip_function()

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
