"""``s3``: the model in an S3 model store, downloaded at cold start; updated by moving an
alias, without a redeploy.

At cold start the runtime resolves the alias and fetches the version's files with parallel
ranged GETs, checks their sha256 (on by default: the bytes travel), keeps ONNX files in memory
and writes the rest to ``/tmp``. Locally the store is the embedded S3 (moto's server on
loopback) unless the shell names an S3 endpoint of its own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelambda.package.archive import Entry
from modelambda.runtime import storelayout
from modelambda.spec import ServiceSpec
from modelambda.spectable import Problems, Table
from modelambda.strategies.base import LocalSetup
from modelambda.strategies.store import StoreStrategy, read_alias_and_refresh

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder

# S3 bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def local_bucket(service_name: str) -> str:
    """A valid bucket name derived from the service name, for local runs."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"modelambda-{service_name.lower()}").strip("-")
    return name[:63].rstrip("-")


class S3(StoreStrategy):
    name = "s3"
    summary = "model in an S3 model store, fetched at cold start; alias moves update it"
    runtime_source = "modelambda.runtime.sources.s3:S3Source"
    verify_checksums = True
    deploy_keys = frozenset({"create_bucket"})

    def read(self, table: Table) -> dict[str, Any]:
        return {
            "bucket": table.string("bucket", pattern=BUCKET,
                                   allowed="an S3 bucket name (3-63 lower-case letters, "
                                           "digits, '.', '-')"),
            "prefix": table.string("prefix", "models"),
            **read_alias_and_refresh(table),
            # deploy: the stack creates the bucket (and keeps it, with the model versions,
            # when the stack is deleted); false: the bucket exists already
            "create_bucket": table.boolean("create_bucket", True),
        }

    def local_settings(self, spec: ServiceSpec) -> dict[str, Any]:
        table = Table("strategy", {"bucket": local_bucket(spec.service.name)}, Problems())
        return self.read(table)

    def tmp_needed(self, model: list[Entry]) -> int:
        # ONNX files stay in memory (an in-memory file onnxruntime loads by path, freed once
        # loaded); the rest goes to /tmp
        return sum(e.size for e in model if not e.name.endswith(".onnx"))

    def start_local(self, spec: ServiceSpec, services: Any) -> LocalSetup:
        settings = spec.strategy.settings
        client = services.s3_client(bucket=settings["bucket"])
        store = self.store(spec, client)
        assert store is not None
        version = self.publish_local(spec, store)
        services.log(f"model {spec.model.name} version {version} is {settings['alias']!r} in "
                     f"{store.describe()}")
        return LocalSetup(environment=services.s3_environment())

    def store(self, spec: ServiceSpec, s3_client: Any = None) -> Any:
        from modelambda.modelstore import S3Store

        settings = spec.strategy.settings
        return S3Store(settings["bucket"], settings.get("prefix", ""), s3_client)


    # --- deploy -----------------------------------------------------------------------------

    def deploy_check(self, spec: ServiceSpec, problems: Problems) -> None:
        prefix = str(spec.strategy.settings["prefix"])
        if any(c in prefix for c in "*?$"):
            problems.add("strategy", "prefix", prefix,
                         "no '*', '?' or '$' to deploy: the function's read permission is "
                         "scoped to this prefix, where IAM would read them as wildcards")

    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """The model bucket (unless it exists already), and read access to this model's
        versions and aliases only: the function GETs ``<prefix>/<model>/aliases/<alias>``
        and the version's manifest and files (ranged, conditional); it never lists.
        Publishing and promoting are done with the user's own credentials."""
        from modelambda.deploy.resources import join, ref

        template.zip_function()
        settings = spec.strategy.settings
        bucket = str(settings["bucket"])
        root = storelayout.join(str(settings["prefix"]), spec.model.name)
        if settings["create_bucket"]:
            template.add("ModelBucket", "AWS::S3::Bucket", {
                "BucketName": bucket,
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True, "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            }, DeletionPolicy="Retain", UpdateReplacePolicy="Retain")
            bucket_arn = join("arn:", ref("AWS::Partition"), ":s3:::", bucket)
            template.add("ModelBucketPolicy", "AWS::S3::BucketPolicy", {
                "Bucket": ref("ModelBucket"),
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [bucket_arn, join(bucket_arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
            })
        template.allow("ReadModelStore", ["s3:GetObject"],
                       [join("arn:", ref("AWS::Partition"), ":s3:::", bucket, "/", root, "/*")])
        template.output("ModelStore", f"s3://{bucket}/{root}",
                        f"model {spec.model.name}'s versions and aliases (the function reads "
                        f"alias {settings['alias']!r})")
