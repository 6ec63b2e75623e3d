"""Processings and model versions: sync, create, import (synchronous; the engine
runs these in worker threads)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from picsellia_tui.engine.definitions import (
    bundled_folders,
    definition_hash,
    load_definition,
)
from picsellia_tui.engine.errors import DefinitionError, InvalidInput, NotFound, read_only
from picsellia_tui.engine.views import ProcessingChange, ProcessingUpdate
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.humanize import first_line
from picsellia_tui.storage.blobs import ImportRefused
from picsellia_tui.storage.domain import (
    NAME_RE,
    VERSION_NAME_MAX,
    VERSION_NAME_RE,
    VERSION_NAME_RULE,
    ProcessingDefinition,
    RunStatus,
    Visibility,
    stored_spec,
)
from picsellia_tui.storage.lightread import CATALOG_SYNCED_AT
from picsellia_tui.storage.models import (
    Job,
    Meta,
    Model,
    ModelVersion,
    Processing,
    Run,
    VersionFile,
    utcnow,
)

TEMPLATE = "_template"
# `processings create --from-template KIND NAME`: the folders under processings/.
TEMPLATES = {"default": TEMPLATE, "picsellia-sdk": "_template_picsellia_sdk"}


def _apply(row: Processing, defn: ProcessingDefinition, digest: str) -> None:
    row.version = defn.version
    row.description = defn.description
    row.task = defn.task.value
    row.target_type = defn.target_type.value
    row.image = defn.image
    row.command = list(defn.command)
    row.entrypoint = list(defn.entrypoint) if defn.entrypoint else None
    row.output_mode = defn.output_mode.value
    row.parameters = [p.model_dump(mode="json") for p in defn.parameters]
    row.constraints = defn.constraints.model_dump(mode="json")
    row.build = defn.build.model_dump(mode="json")
    row.picsellia = defn.picsellia.model_dump(mode="json")
    row.definition_hash = digest
    row.updated_at = utcnow()


def definition_of(row: Processing) -> ProcessingDefinition:
    return ProcessingDefinition.model_validate(
        {
            "name": row.name,
            "version": row.version,
            "description": row.description,
            "task": row.task,
            "target_type": row.target_type,
            "image": row.image,
            "command": row.command,
            "entrypoint": row.entrypoint,
            "output_mode": row.output_mode,
            "parameters": [stored_spec(p) for p in row.parameters],
            "constraints": row.constraints,
            "build": row.build,
            "picsellia": row.picsellia,
        }
    )


def sync_public(ws: Workspace) -> tuple[list[str], list[str]]:
    """Bring bundled processings into the database. Returns (synced names, errors).

    Idempotent; a changed definition updates its row; a broken one is reported and
    skipped without touching the others.
    """
    started = time.time()  # before reading: an edit from now on is newer
    loaded: list[tuple[Path, ProcessingDefinition]] = []
    errors: list[str] = []
    for folder in bundled_folders(ws.settings.processings_dir):
        try:
            loaded.append((folder, load_definition(folder)))
        except DefinitionError as exc:
            errors.append(str(exc))
    names = []
    with ws.db.write() as s:
        for folder, defn in loaded:
            digest = definition_hash(defn)
            row = s.exec(select(Processing).where(Processing.name == defn.name)).first()
            if row is not None and row.visibility == Visibility.PRIVATE:
                errors.append(
                    f"{folder}: a private processing is already named {defn.name!r}; not synced"
                )
                continue
            if row is None:
                row = Processing(
                    name=defn.name,
                    version="",
                    task="",
                    target_type="",
                    image="",
                    output_mode="",
                    visibility=Visibility.PUBLIC.value,
                    definition_hash="",
                    source_dir=str(folder),
                )
            elif row.definition_hash == digest and row.source_dir == str(folder):
                names.append(defn.name)
                continue
            row.source_dir = str(folder)
            _apply(row, defn, digest)
            s.add(row)
            names.append(defn.name)
        # The light read path (storage/lightread.py) trusts the synced rows only
        # while no processing.toml is newer than this.
        mark = s.get(Meta, CATALOG_SYNCED_AT) or Meta(key=CATALOG_SYNCED_AT, value="")
        mark.value = repr(started)
        s.add(mark)
    return names, errors


def create_private(
    ws: Workspace, *, folder: Path | None = None, defn: ProcessingDefinition | None = None
) -> Processing:
    """A user's processing, from a folder (processing.toml + Dockerfile) or a
    definition pointing at an existing image. A taken name is refused: an existing
    processing changes through `update_private` (one way to do it)."""
    if folder is not None:
        folder = folder.resolve()
        defn = load_definition(folder)
        build_paths(folder, defn, private=True)
    assert defn is not None
    digest = definition_hash(defn)
    with ws.db.write() as s:
        row = s.exec(select(Processing).where(Processing.name == defn.name)).first()
        if row is not None and row.removed_at is not None and row.owner_id == ws.user_id:
            # The name of a processing this user removed: the row comes back (its
            # old jobs keep pointing at it), with the new definition.
            row.removed_at = None
            row.created_at = utcnow()
        elif row is not None:
            if row.visibility == Visibility.PUBLIC:
                raise InvalidInput(
                    f"{defn.name!r} is a public processing (read-only); pick another name", "name"
                )
            if row.owner_id != ws.user_id:
                raise InvalidInput(f"{defn.name!r} belongs to another user", "name")
            hint = (
                f"update it from its folder: picsellia-tui processings update {defn.name}"
                if row.source_dir
                else "pick another name"
            )
            raise InvalidInput(f"a processing named {defn.name!r} already exists; {hint}", "name")
        else:
            row = Processing(
                name=defn.name,
                version="",
                task="",
                target_type="",
                image="",
                output_mode="",
                visibility=Visibility.PRIVATE.value,
                owner_id=ws.user_id,
                definition_hash="",
            )
        _check_image_not_taken(s, defn, ws.user_id)
        row.source_dir = str(folder) if folder else None
        _apply(row, defn, digest)
        s.add(row)
        s.flush()
        return row


def image_definition(
    image: str,
    *,
    name: str | None = None,
    task: str = "MODEL_CONVERSION",
    target_type: str = "model_version",
    command: str | None = None,
    entrypoint: str | None = None,
    frameworks: list[str] | None = None,
    output_mode: str | None = None,
    description: str = "",
    picsellia_api: bool = False,
) -> dict[str, Any]:
    """The definition of a processing registered from an image, from what a user
    types (the command line's options, the app's form): the command and entrypoint
    as shell words, the name the image's when not given. Validated by the engine."""
    try:
        words = shlex.split(command or "")
        entry = shlex.split(entrypoint) if entrypoint is not None else None
    except ValueError as exc:
        raise InvalidInput(f"command: {exc}", "command") from None
    definition: dict[str, Any] = {
        "name": name or name_from_image(image),
        "image": image,
        "task": task,
        "target_type": target_type,
        "command": words,
        # Served Picsellia's API, an SDK image writes through it: no output by default.
        "output_mode": output_mode or ("none" if picsellia_api else "new_model_version"),
        "description": description,
        "constraints": {"frameworks": [f.strip() for f in frameworks or [] if f.strip()]},
    }
    if entry is not None:
        definition["entrypoint"] = entry
    if picsellia_api:
        definition["picsellia"] = {"api": True}
    return definition


def name_from_image(image: str) -> str:
    """A processing name for an image registered without one: its repository's last
    part ('ghcr.io/acme/Quantize:2' -> 'quantize'); refused later if it is no name."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def _shown(value: Any) -> str:
    """A definition value in one short line, for a list of changes."""
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_shown(v)}" for k, v in value.items() if v not in (None, [], ""))
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _param_text(spec: dict[str, Any]) -> str:
    """A parameter spec without its name: 'int = 3 0..10 required'."""
    bits = [str(spec.get("type"))]
    if spec.get("default") is not None:
        bits.append(f"= {'••••••' if spec.get('secret') else _shown(spec['default'])}")
    if spec.get("min") is not None or spec.get("max") is not None:
        lo, hi = spec.get("min"), spec.get("max")
        bits.append(f"{'' if lo is None else f'{lo:g}'}..{'' if hi is None else f'{hi:g}'}")
    if spec.get("choices"):
        bits.append(" | ".join(spec["choices"]))
    bits += [flag for flag in ("required", "secret") if spec.get(flag)]
    if spec.get("help"):
        bits.append(f"· {_shown(spec['help'])}")
    return " ".join(bits)


def definition_changes(
    old: ProcessingDefinition, new: ProcessingDefinition
) -> list[ProcessingChange]:
    """What saving `new` over `old` changes, key by key (parameters by name)."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    out: list[ProcessingChange] = []
    for key in b:
        if key == "parameters":
            old_specs = {p["name"]: p for p in a[key]}
            new_specs = {p["name"]: p for p in b[key]}
            for name in [*old_specs, *(n for n in new_specs if n not in old_specs)]:
                was, now = old_specs.get(name), new_specs.get(name)
                if was != now:
                    out.append(
                        ProcessingChange(
                            what=f"parameters.{name}",
                            before=_param_text(was) if was else "-",
                            after=_param_text(now) if now else "-",
                        )
                    )
        elif isinstance(b[key], dict) and isinstance(a.get(key) or {}, dict):
            section = a.get(key) or {}
            for sub in b[key]:
                if section.get(sub) != b[key][sub]:
                    out.append(
                        ProcessingChange(
                            what=f"{key}.{sub}",
                            before=_shown(section.get(sub)),
                            after=_shown(b[key][sub]),
                        )
                    )
        elif a.get(key) != b[key]:
            if key in ("command", "entrypoint"):  # shell words, as typed
                before = shlex.join(a.get(key) or []) or "-"
                after = shlex.join(b[key] or []) or "-"
            else:
                before, after = _shown(a.get(key)), _shown(b[key])
            out.append(ProcessingChange(what=key, before=before, after=after))
    return out


def _own_private(ws: Workspace, row: Processing, what: str) -> None:
    """Refuse `what` (update, remove) on a processing the user may not change."""
    if row.visibility == Visibility.PUBLIC:
        raise InvalidInput(read_only(row.name, what), "name")
    if row.owner_id != ws.user_id:
        raise InvalidInput(f"{row.name} belongs to another user: it cannot be {what}", "name")


def _folder_definition(row: Processing) -> tuple[Path, ProcessingDefinition]:
    """The processing's folder and what its processing.toml says now."""
    if not row.source_dir:
        raise InvalidInput(
            f"{row.name} was registered from an image: it has no folder to update from",
            "name",
        )
    folder = Path(row.source_dir)
    defn = load_definition(folder)
    if defn.name != row.name:
        raise DefinitionError(
            str(folder / "processing.toml"),
            "name",
            f"is {defn.name!r}, not {row.name!r} (a processing keeps its name: create a new one)",
        )
    build_paths(folder, defn, private=True)
    return folder, defn


def plan_update(ws: Workspace, name: str) -> ProcessingUpdate:
    """What updating a private processing from its folder would change (nothing saved)."""
    with ws.db.read() as s:
        row = find_processing(s, name)
    _own_private(ws, row, "updated")
    folder, defn = _folder_definition(row)
    return ProcessingUpdate(
        name=row.name,
        folder=str(folder),
        changes=definition_changes(definition_of(row), defn),
        definition_hash=definition_hash(defn),
    )


def update_private(ws: Workspace, name: str, expect_hash: str | None = None) -> Processing:
    """Save a private processing's folder definition, in one write transaction.

    With `expect_hash` (from plan_update) the file must still say what was shown:
    edited meanwhile, it is refused rather than saved unseen."""
    with ws.db.write() as s:
        row = find_processing(s, name)
        _own_private(ws, row, "updated")
        _, defn = _folder_definition(row)
        digest = definition_hash(defn)
        if expect_hash is not None and digest != expect_hash:
            raise InvalidInput(
                f"{row.source_dir}/processing.toml changed since its changes were shown; "
                "review them again",
                "name",
            )
        if digest != row.definition_hash:
            _check_image_not_taken(s, defn, ws.user_id)
            _apply(row, defn, digest)
            s.add(row)
        s.flush()
        return row


def _repository(image: str) -> str:
    """'reg:5000/a/b:1.0@sha256:..' -> 'reg:5000/a/b' (the part a build replaces)."""
    ref = image.split("@", 1)[0]
    head, _, tail = ref.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else tail.split(":", 1)[0]


def _check_image_not_taken(s: Session, defn: ProcessingDefinition, user_id: int | None) -> None:
    """A private processing may not name the image of a public processing (or of
    another user's): building it would replace that image for everybody."""
    repo = _repository(defn.image)
    for other in s.exec(select(Processing).where(Processing.name != defn.name)).all():
        theirs = other.visibility == Visibility.PUBLIC or other.owner_id != user_id
        if theirs and _repository(other.image) == repo:
            whose = "the public" if other.visibility == Visibility.PUBLIC else "another user's"
            raise InvalidInput(
                f"image {defn.image!r} is the image of {whose} processing {other.name!r}; "
                "a private processing needs an image name of its own",
                "image",
            )


def build_paths(folder: Path, defn: ProcessingDefinition, *, private: bool) -> tuple[Path, Path]:
    """(build context, Dockerfile) of a processing folder, resolved and checked.

    The context is uploaded to the Docker host, maybe a remote one: a private
    processing's must stay inside its folder (not `../..`, a home directory).
    Bundled processings share a base layer one level up.
    """
    folder = folder.resolve()
    ctx = (folder / defn.build.context).resolve()
    dockerfile = (folder / defn.build.dockerfile).resolve()
    if private and not ctx.is_relative_to(folder):
        raise InvalidInput(
            f"build context {defn.build.context!r} is outside the processing folder {folder}; "
            "it would be uploaded to the Docker host",
            "build.context",
        )
    if not dockerfile.is_relative_to(ctx):
        raise InvalidInput(f"{dockerfile} is outside the build context {ctx}", "build.dockerfile")
    return ctx, dockerfile


def check_name_free(ws: Workspace, name: str) -> None:
    """Refuse a name some processing already has, before anything is written."""
    with ws.db.read() as s:
        row = s.exec(select(Processing).where(Processing.name == name)).first()
    if row is not None and not (row.removed_at is not None and row.owner_id == ws.user_id):
        what = "a public processing" if row.visibility == Visibility.PUBLIC else "a processing"
        raise InvalidInput(f"{name!r} is already {what}'s name; pick another name", "name")


def scaffold(ws: Workspace, name: str, dest: Path, template: str = TEMPLATE) -> Path:
    """Copy a template folder to dest/name with the name filled in."""
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"{name!r}: a processing name is lowercase letters, digits, '.', '_' or '-'", "name"
        )
    src = ws.settings.processings_dir / template
    if not src.is_dir():
        raise NotFound(f"the processing template is missing ({src})")
    target = dest / name
    if target.exists():
        raise InvalidInput(f"{target} already exists; choose another name or folder", "name")
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    toml = target / "processing.toml"
    text = toml.read_text()
    toml.write_text(
        text.replace('name = "my-processing"', f'name = "{name}"').replace(
            "picsellia-tui/my-processing:", f"picsellia-tui/{name}:"
        )
    )
    return target


def find_version(s: Session, ref: str) -> tuple[Model, ModelVersion]:
    """'model/version' or a numeric version id."""
    if ref.isdigit():
        v = s.get(ModelVersion, int(ref))
        if v is None:
            raise NotFound(f"no model version with id {ref}")
        m = s.get(Model, v.model_id)
        assert m is not None
        return m, v
    model_name, sep, version_name = ref.partition("/")
    if not sep:
        raise InvalidInput(f"{ref!r}: name a version as MODEL/VERSION (or its id)", "version")
    m = s.exec(select(Model).where(Model.name == model_name)).first()
    if m is None:
        raise NotFound(f"no model named {model_name!r}")
    v = s.exec(
        select(ModelVersion).where(ModelVersion.model_id == m.id, ModelVersion.name == version_name)
    ).first()
    if v is None:
        raise NotFound(f"model {model_name!r} has no version {version_name!r}")
    return m, v


def find_processing(s: Session, name: str) -> Processing:
    """A listed processing by name (or id); a removed one is not found."""
    row = s.exec(select(Processing).where(Processing.name == name)).first()
    if row is None and name.isdigit():
        row = s.get(Processing, int(name))
    if row is None:
        raise NotFound(f"no processing named {name!r} (see: picsellia-tui processings list)")
    if row.removed_at is not None:
        raise NotFound(
            f"processing {row.name!r} was removed on {row.removed_at:%Y-%m-%d %H:%M} "
            "(its jobs stay in the history)"
        )
    return row


def remove_private(ws: Workspace, name: str) -> Processing:
    """Remove a private processing, in one write transaction: refused while one of
    its runs is pending or running (a launch or re-run of it commits either before,
    and is seen here, or after, and finds it removed). Its row stays for its jobs."""
    with ws.db.write() as s:
        row = find_processing(s, name)
        _own_private(ws, row, "removed")
        active = s.exec(
            select(func.count())
            .select_from(Run)
            .join(Job, col(Job.id) == col(Run.job_id))
            .where(
                Job.processing_id == row.id,
                col(Run.status).in_((RunStatus.PENDING.value, RunStatus.RUNNING.value)),
            )
        ).one()
        if active:
            runs = "an active run" if active == 1 else f"{active} active runs"
            raise InvalidInput(
                f"{row.name} has {runs} (pending or running): cancel it or let it end, "
                "then remove the processing",
                "name",
            )
        row.removed_at = row.updated_at = utcnow()
        s.add(row)
        s.flush()
        return row


def check_version_name(name: str) -> None:
    if not VERSION_NAME_RE.match(name):
        raise InvalidInput(f"version name {name!r}: use {VERSION_NAME_RULE}", "version_name")


def default_version_name(version: str, processing: str) -> str:
    """The name a launch gives its new version unless told: <version>-<last part of
    the processing's name> (it may still be taken: see `unique_version_name`)."""
    short = processing.split("-")[-1] if "-" in processing else processing
    return f"{version}-{short}"


def collect_files(paths: list[Path], quota: int | None = None) -> list[tuple[str, Path]]:
    """(relative path, file) for files and folders given on the command line:
    regular files only (a FIFO would hang the import, /dev/zero fill the disk),
    no links, at most `quota` bytes in all."""
    out: list[tuple[str, Path]] = []
    total = 0

    def add(rel: str, f: Path, st: os.stat_result) -> None:
        nonlocal total
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{f}: not a regular file (special files are not imported)", "files")
        total += st.st_size
        out.append((rel, f))

    for p in paths:
        try:
            st = p.lstat()
        except OSError:
            raise InvalidInput(f"{p}: no such file (links are not followed)", "files") from None
        if stat.S_ISLNK(st.st_mode):
            raise InvalidInput(f"{p}: no such file (links are not followed)", "files")
        if stat.S_ISDIR(st.st_mode):
            for f in sorted(p.rglob("*")):
                try:
                    fst = f.lstat()
                except OSError:
                    msg = f"{f}: vanished while the folder was read"
                    raise InvalidInput(msg, "files") from None
                if stat.S_ISLNK(fst.st_mode):
                    raise InvalidInput(f"{f}: symbolic links are not imported", "files")
                if not stat.S_ISDIR(fst.st_mode):
                    add(f.relative_to(p).as_posix(), f, fst)
        else:
            add(p.name, p, st)
    seen: set[str] = set()
    for rel, _ in out:
        if rel in seen:
            raise InvalidInput(f"two files would be stored as {rel!r}", "files")
        seen.add(rel)
    if not out:
        raise InvalidInput("no files to import", "files")
    if quota is not None and total > quota:
        raise InvalidInput(
            f"the files add up to {total} bytes, over the import quota of {quota} "
            "(import_quota in the config)",
            "files",
        )
    return out


def store_files(
    ws: Workspace, files: list[tuple[str, Path]], quota: int | None = None
) -> list[tuple[str, str, int]]:
    """Every file into the blob store, or none (ImportRefused: one line)."""
    try:
        stored = ws.blobs.put_files([src for _, src in files], quota)
    except ImportRefused as exc:
        raise InvalidInput(str(exc), "files") from None
    return [(rel, sha, size) for (rel, _), (sha, size) in zip(files, stored, strict=True)]


def add_version(
    s: Session,
    ws: Workspace,
    *,
    model_name: str,
    version_name: str,
    framework: str,
    stored: list[tuple[str, str, int]],
    labels: list[str] | None = None,
    tags: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "",
    parent_id: int | None = None,
    origin_job_id: int | None = None,
) -> ModelVersion:
    check_version_name(version_name)
    _check_words(framework, "framework", 32)
    for label in labels or []:
        _check_words(label, "label", 128)
    for tag in tags or []:
        _check_words(tag, "tag", 128)
    if not NAME_RE.match(model_name.lower()) or model_name != model_name.strip():
        raise InvalidInput(
            f"model name {model_name!r}: use letters, digits, '.', '_' or '-'", "model"
        )
    model = s.exec(select(Model).where(Model.name == model_name)).first()
    if model is None:
        model = Model(name=model_name, owner_id=ws.user_id)
        s.add(model)
        s.flush()
    exists = s.exec(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.name == version_name
        )
    ).first()
    if exists is not None:
        raise InvalidInput(
            f"model {model_name!r} already has a version {version_name!r}", "version_name"
        )
    assert model.id is not None
    version = ModelVersion(
        model_id=model.id,
        name=version_name,
        framework=framework.lower(),
        description=description,
        labels=list(labels or []),
        tags=sorted(set(tags or [])),
        metrics=dict(metrics or {}),
        size_bytes=sum(size for _, _, size in stored),
        parent_id=parent_id,
        origin_job_id=origin_job_id,
        created_by_id=ws.user_id,
    )
    s.add(version)
    s.flush()
    assert version.id is not None
    for rel, sha, size in stored:
        s.add(VersionFile(version_id=version.id, path=rel, sha256=sha, size=size))
    return version


def unique_version_name(s: Session, model_id: int, base: str) -> str:
    """`base`, or `base-2`, `base-3`... : the first name the model does not have yet,
    cut to fit the name limit (the suffix is kept whole)."""
    names = set(s.exec(select(ModelVersion.name).where(ModelVersion.model_id == model_id)).all())
    name = base[:VERSION_NAME_MAX]
    i = 1
    while name in names:
        i += 1
        suffix = f"-{i}"
        name = base[: VERSION_NAME_MAX - len(suffix)] + suffix
    return name


def read_result(outputs: Path) -> dict[str, Any]:
    """result.json, validated; a malformed one is an error naming the key.

    It is written by the run's code, so it is not trusted: its strings end up in
    tables and the TUI and may not carry control characters.
    """
    path = outputs / "result.json"
    try:
        st = path.lstat()
    except FileNotFoundError:
        return {}
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput("result.json is not a regular file", "result.json")
    if st.st_size > MAX_RESULT_BYTES:
        raise InvalidInput(
            f"result.json is larger than {MAX_RESULT_BYTES // 1024} KiB", "result.json"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = first_line(exc)[:120]
        raise InvalidInput(f"result.json is not valid JSON ({reason})", "result.json") from None
    except RecursionError:  # "[[[[..." 100,000 deep
        raise InvalidInput("result.json is nested too deeply", "result.json") from None
    if not isinstance(data, dict):
        raise InvalidInput("result.json must hold a JSON object", "result.json")
    fw = data.get("framework")
    if fw is not None and (not isinstance(fw, str) or not 0 < len(fw) <= 32 or _unsafe(fw)):
        raise InvalidInput("result.json: framework must be a short string", "result.json")
    for key in ("tags", "labels"):
        val = data.get(key)
        if val is not None and (
            not isinstance(val, list)
            or not all(isinstance(t, str) and len(t) <= 128 and not _unsafe(t) for t in val)
        ):
            raise InvalidInput(
                f"result.json: {key} must be a list of short strings without control characters",
                "result.json",
            )
    metrics = data.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict) or not all(
            isinstance(k, str)
            and not _unsafe(k)
            and (
                isinstance(v, int | float | bool)
                or v is None
                or (isinstance(v, str) and not _unsafe(v))
            )
            for k, v in metrics.items()
        ):
            raise InvalidInput(
                "result.json: metrics must map names to numbers or strings", "result.json"
            )
    return data


_UNSAFE_RX = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
MAX_RESULT_BYTES = 1 << 20  # framework, tags, labels, metrics: far less than that


def _unsafe(text: str) -> bool:
    return _UNSAFE_RX.search(text) is not None


def _check_words(value: object, what: str, limit: int) -> None:
    """A framework, label or tag: shown in every table, so one short line of
    printable text (no escape sequence, newline or bidi override)."""
    if not isinstance(value, str) or not 0 < len(value) <= limit or _unsafe(value):
        raise InvalidInput(
            f"{what} {str(value)[:40]!r}: use 1 to {limit} printable characters "
            "(no control characters)",
            what,
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")
