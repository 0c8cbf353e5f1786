"""A SageMaker ``model.tar.gz``: the model files at the archive's root (SageMaker unpacks it
to ``/opt/ml/model``) plus the version manifest, reproducible like the zips."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from modelambda.package.build import publishable_model
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import ServiceSpec, model_files, version_of


def model_tarball(spec: ServiceSpec, target: Path) -> str:
    files = publishable_model(spec, spec.root / ".modelambda" / "sagemaker")
    manifest = {"format": 1, "model": spec.model.name, "framework": spec.model.framework,
                "version": spec.model.version or version_of(model_files(spec.model_path)),
                "files": {rel: {"sha256": sha256_file(p),
                                "size": p.stat().st_size} for rel, p in sorted(files.items())}}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = [(rel, path.read_bytes()) for rel, path in sorted(files.items())]
        entries.append(("manifest.json", json.dumps(manifest, indent=1).encode()))
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return sha256_file(target)
