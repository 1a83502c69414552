"""`fleet package`: one bootstrap-free template plus its assets, ready for one bucket.

Layout of ``DIR`` (upload ``DIR/assets/`` to ``s3://BUCKET/PREFIX``, the Workshop Studio way):

    DIR/fleet-package.json            what was packaged (read by provision / stackset)
    DIR/assets/<stack>.template.json  the template (parameters AssetsBucketName, AssetsBucketPrefix,
                                      ParticipantRoleName)
    DIR/assets/<sha256>.zip           Lambda code, BucketDeployment sources (directories zipped)
    DIR/assets/<sha256>.<ext>         single-file assets, copied as they are

The keys come from the cloud assembly's asset manifest (``<stack>.assets.json``), so the
template and the files always agree: a destination ``objectKey`` is ``${AssetsBucketPrefix}``
followed by the file name written here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from secml.errors import SecmlError
from secml.outputs import check_output, write_text_atomic

MANIFEST_NAME = "fleet-package.json"
PREFIX_PLACEHOLDER = "${AssetsBucketPrefix}"
BUCKET_PLACEHOLDER = "${AssetsBucketName}"
# The date CDK's own asset zips use, so a zip's bytes depend only on the files in it.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class PackagedAsset:
    key: str  # object key below AssetsBucketPrefix == file name under DIR/assets/
    source: str  # what CDK called it (construct path / display name)
    packaging: str  # "zip" (a directory we zipped) or "file"
    sha256: str
    size: int


@dataclass
class Package:
    stack_name: str
    template: str  # path relative to DIR
    template_key: str  # object key below AssetsBucketPrefix
    parameters: list[str]
    assets: list[PackagedAsset]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_package(directory: Path) -> tuple[Package, dict[str, Any]]:
    """The manifest and the template of a packaged DIR (for provision and stackset)."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise SecmlError(
            f"{directory} is not a fleet package (no {MANIFEST_NAME}); "
            "run `python -m secml fleet package --out DIR` first"
        )
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
        package = Package(
            stack_name=raw["stack_name"],
            template=raw["template"],
            template_key=raw["template_key"],
            parameters=list(raw["parameters"]),
            assets=[PackagedAsset(**a) for a in raw["assets"]],
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SecmlError(
            f"{manifest_path}: not readable JSON ({str(exc)[:100] or 'empty file'}); "
            "run `fleet package` again"
        ) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise SecmlError(
            f"{manifest_path}: not a fleet package manifest (missing or wrong {exc}); "
            "run `fleet package` again"
        ) from None
    template_path = directory / package.template
    try:
        template = json.loads(template_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecmlError(
            f"{manifest_path} names the template {package.template}, which is missing; "
            "run `fleet package` again"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SecmlError(f"{template_path}: not a readable template ({str(exc)[:100]})") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise SecmlError(f"{template_path}: not a CloudFormation template (no Resources)")
    return package, template


def zip_directory(src: Path, dest: Path) -> None:
    """Zip a directory's contents (not the directory itself) deterministically.

    Lambda and BucketDeployment expect the files at the root of the archive, readable by
    everyone (mode bits are kept: a handler that is 0600 cannot be read by the runtime).
    """
    files = sorted(p for p in src.rglob("*") if p.is_file())
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=ZIP_EPOCH)
            mode = path.stat().st_mode
            perms = 0o755 if mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | perms) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _asset_file_name(object_key: str, asset_id: str) -> str:
    if not object_key.startswith(PREFIX_PLACEHOLDER):
        raise SecmlError(
            f"asset {asset_id}: object key {object_key!r} does not start with "
            f"{PREFIX_PLACEHOLDER}; was the stack synthesized with AssetParameterSynthesizer?"
        )
    name = object_key[len(PREFIX_PLACEHOLDER) :]
    if not name or "/" in name or "${" in name:
        raise SecmlError(f"asset {asset_id}: unexpected object key {object_key!r}")
    return name


def check_out(out: Path) -> None:
    """Before the synth: DIR must be new, empty or an earlier package (it is replaced)."""
    check_output(out, option="--out", kind="folder")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise SecmlError(f"{out} exists and is not an earlier fleet package; choose an empty DIR")


def _prepare_out(out: Path) -> None:
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)


def package_from_assembly(assembly_dir: Path, stack_artifact_id: str, out: Path) -> Package:
    """Copy one synthesized stack and its file assets from a cloud assembly into ``out``."""
    _prepare_out(out)
    template_file = f"{stack_artifact_id}.template.json"
    manifest = json.loads((assembly_dir / f"{stack_artifact_id}.assets.json").read_text())
    if manifest.get("dockerImages"):
        raise SecmlError("the stack has Docker image assets; a fleet package supports files only")
    template = json.loads((assembly_dir / template_file).read_text())
    if "BootstrapVersion" in template.get("Parameters", {}):
        raise SecmlError("the template still has a BootstrapVersion parameter")

    staging = Path(tempfile.mkdtemp(prefix=".package-", dir=out))
    staging.chmod(0o755)
    try:
        assets: list[PackagedAsset] = []
        for asset_id, entry in sorted(manifest.get("files", {}).items()):
            source = entry["source"]
            if source.get("path") == template_file:
                continue  # the template itself: written under a readable name below
            for destination in entry["destinations"].values():
                if destination["bucketName"] != BUCKET_PLACEHOLDER:
                    raise SecmlError(
                        f"asset {asset_id} goes to bucket {destination['bucketName']!r}, "
                        f"not {BUCKET_PLACEHOLDER}"
                    )
                name = _asset_file_name(destination["objectKey"], asset_id)
                src = assembly_dir / source["path"]
                packaging = source.get("packaging", "file")
                target = staging / name
                if packaging == "zip":
                    zip_directory(src, target)
                elif packaging == "file":
                    shutil.copyfile(src, target)
                else:
                    raise SecmlError(f"asset {asset_id}: unsupported packaging {packaging!r}")
                assets.append(
                    PackagedAsset(
                        key=name,
                        source=entry.get("displayName", source["path"]),
                        packaging=packaging,
                        sha256=_sha256(target),
                        size=target.stat().st_size,
                    )
                )
        template_name = f"{stack_artifact_id}.template.json"
        (staging / template_name).write_text(json.dumps(template, indent=1, sort_keys=True))
        package = Package(
            stack_name=stack_artifact_id,
            template=f"assets/{template_name}",
            template_key=template_name,
            parameters=sorted(template.get("Parameters", {})),
            assets=assets,
        )
        # Swap the finished assets/ in, then the manifest last: a package is whole or absent.
        manifest_path = out / MANIFEST_NAME
        manifest_path.unlink(missing_ok=True)
        shutil.rmtree(out / "assets", ignore_errors=True)
        os.replace(staging, out / "assets")
        write_text_atomic(manifest_path, json.dumps(package.to_json(), indent=2) + "\n")
        return package
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def package_app(
    out: Path,
    *,
    stack_name: str = "SecmlWorkshop",
    context: dict[str, Any] | None = None,
    build_app: Callable[..., Any] | None = None,
) -> Package:
    """Synthesize the app in fleet mode (cdk-nag runs as part of synth) and package it."""
    check_out(out)
    if build_app is None:
        from stacks.app import build_app as _build

        build_app = _build
    ctx = {**(context or {}), "fleet": "true", "stack_name": stack_name}
    with tempfile.TemporaryDirectory(prefix="secml-fleet-synth-") as assembly:
        try:
            cloud_assembly = build_app(ctx, outdir=assembly).synth()
        except RuntimeError as exc:  # jsii surfaces JavaScript errors as RuntimeError
            report = Path(assembly) / "validation-report.json"
            kept = ""
            if report.is_file():
                out.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report, out / "validation-report.json")
                kept = f"; findings in {out / 'validation-report.json'}"
            first = (str(exc).strip().splitlines() or [repr(exc)])[0]
            raise SecmlError(f"synth failed (cdk-nag / validation): {first}{kept}") from exc
        stacks = [s for s in cloud_assembly.stacks if s.stack_name == stack_name]
        if not stacks:
            raise SecmlError(f"the app has no stack named {stack_name!r}")
        return package_from_assembly(Path(assembly), stacks[0].id, out)
