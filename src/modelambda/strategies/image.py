"""``image``: function and model in a container image on AWS's Lambda Python base image.

The build writes a Docker build context (``docker build`` or ``podman build`` work on it
unchanged); locally the context's task root is run as ``/var/task``. Limit: 10 GB
uncompressed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modelambda
from modelambda.package.archive import Entry
from modelambda.package.artifacts import HANDLER, Artifact, Parts
from modelambda.package.checks import Check, image_checks
from modelambda.package.files import link_or_copy
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import ServiceSpec
from modelambda.spectable import Problems, Table
from modelambda.strategies.base import Strategy

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder

# AWS's Lambda base images for Python (gallery.ecr.aws/lambda/python).
BASE_IMAGES = {"x86_64": "public.ecr.aws/lambda/python:{version}",
               "arm64": "public.ecr.aws/lambda/python:{version}-arm64"}

DOCKERFILE = """\
# Built by modelambda {version}: the {service} function on AWS's Lambda Python base image.
# docker build --platform {platform} -t {service} .   (or: podman build ...)
FROM {base}
COPY task/ ${{LAMBDA_TASK_ROOT}}/
CMD ["{handler}"]
"""

# ECR repository names (docs: ECR CreateRepository).
REPOSITORY = re.compile(r"^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*"
                        r"[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class Image(Strategy):
    name = "image"
    summary = "function and model in a container image (ECR)"
    runtime_source = "modelambda.runtime.sources.local:ImageSource"
    deploy_keys = frozenset({"repository"})

    def read(self, table: Table) -> dict[str, Any]:
        return {
            # deploy: an existing ECR repository to push to; by default the stack creates
            # modelambda/<service> (and keeps it, with its images, when the stack is deleted)
            "repository": table.string("repository", None, pattern=REPOSITORY,
                                       allowed="an ECR repository name (lower-case letters, "
                                               "digits, '.', '_', '-' and '/')"),
        }

    def check(self, spec: ServiceSpec, problems: Problems) -> None:
        if spec.service.snapstart:
            problems.add("service", "snapstart", True,
                         "Lambda has no SnapStart for container images (zip functions only)")
        if spec.service.layers:
            problems.add("service", "layers", list(spec.service.layers),
                         "Lambda has no layers for container images: put the files in the "
                         "service directory, or use a zip strategy")

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        return Artifact("context", "image-context", out / "context",
                        [Entry(f"task/{e.name}", e.source) for e in parts.task],
                        "docker build context: Dockerfile + task root"), []

    def size_checks(self, function: Artifact, layers: list[Artifact], *,
                    zipped: bool, image_base_bytes: int) -> list[Check]:
        return image_checks(function.unzipped_bytes, image_base_bytes)

    def size_fixes(self, model_bytes: int) -> list[str]:
        return [f"the 's3' or 'efs' strategy keeps the model ({model_bytes:,} bytes) out of "
                "the image"]

    def write(self, function: Artifact, layers: list[Artifact], spec: ServiceSpec,
              architecture: str) -> None:
        context = function.path
        context.mkdir(parents=True, exist_ok=True)
        link_or_copy(function.entries, context)
        dockerfile = context / "Dockerfile"
        dockerfile.write_text(DOCKERFILE.format(
            version=modelambda.__version__, service=spec.service.name,
            platform="linux/amd64" if architecture == "x86_64" else "linux/arm64",
            base=base_image(spec.service.runtime, architecture), handler=HANDLER))
        function.entries.append(Entry("Dockerfile", dockerfile))
        # The context's identity: a hash over its files' names and hashes (sorted).
        digest = "\n".join(f"{e.name} {sha256_file(context / e.name)}"
                           for e in sorted(function.entries, key=lambda e: e.name))
        function.sha256 = hashlib.sha256(digest.encode()).hexdigest()

    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """``PackageType: Image`` from ECR by digest, and the repository (unless the spec
        names an existing one). Before the first push deploy has no image: the template then
        holds the repository only."""
        from modelambda.deploy.resources import join, ref

        repository = spec.strategy.settings.get("repository")
        if repository is None:
            repository = repository_name(spec)
            template.add("Repository", "AWS::ECR::Repository", {
                "RepositoryName": repository,
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "EncryptionConfiguration": {"EncryptionType": "AES256"},
            }, DeletionPolicy="Retain", UpdateReplacePolicy="Retain")
        template.output("RepositoryUri", join(ref("AWS::AccountId"), ".dkr.ecr.",
                                              ref("AWS::Region"), ".", ref("AWS::URLSuffix"),
                                              "/", repository),
                        "where deploy pushes the function's image")
        template.image_function()


def repository_name(spec: ServiceSpec) -> str:
    """The ECR repository the stack creates: ``modelambda/<service>`` in ECR's alphabet."""
    name = re.sub(r"[^a-z0-9]+", "-", spec.service.name.lower()).strip("-") or "service"
    return f"modelambda/{name}"


def base_image(runtime: str, architecture: str) -> str:
    return BASE_IMAGES[architecture].format(version=runtime.removeprefix("python"))
