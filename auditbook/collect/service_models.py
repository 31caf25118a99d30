"""botocore's service models as a scan loads them: parsed with orjson, without their documentation
strings, and kept in a local cache in that form.

A scan creates a client per (service, region) it reads; each service's model files are gzipped JSON
(EC2's model: 3.6 MB of JSON, ~70 % of it documentation auditbook never shows). Gunzipping, parsing and
blanking the documentation of a small scan's ~30 services took ~0.1 s of its ~1.3 s; the cache keeps
each file as it is once loaded (plain JSON, documentation blanked), so the next process parses a third
of the bytes and does nothing else (~0.04 s).

The cache is an optimisation, never a source of truth, and used only in a private folder of this user
(docs/security.md: a model says where an API's endpoint is): an entry is named by the source file's path,
size, inode, modification and change times and botocore's version; an entry that is not a regular JSON
object of a sane size is read from the source again and replaced; a folder that is not private, cannot
be created or cannot be written leaves the models loaded from botocore's own files."""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional

import botocore
import orjson
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.loaders import JSONFileLoader, Loader, instance_cache

log = logging.getLogger(__name__)
CACHE_FORMAT = "1"  # bump when what is kept changes (what is blanked, the encoding)
SERVICE_MODEL = "service-2.json"


def _blank_docs(node) -> None:
    if isinstance(node, dict):
        for key in ("documentation", "documentationUrl"):
            if isinstance(node.get(key), str):
                node[key] = ""


def strip_docs(model: dict) -> None:
    """Empty the documentation strings of a service model where botocore's models carry them (the
    model, each operation, its input, output and errors, each shape and its members); the keys stay:
    some botocore code indexes them. A walk of these places, not of every node (twice as fast)."""
    _blank_docs(model)
    for operation in (model.get("operations") or {}).values():
        _blank_docs(operation)
        for part in [operation.get("input"), operation.get("output"), *(operation.get("errors") or [])]:
            _blank_docs(part)
    for shape in (model.get("shapes") or {}).values():
        _blank_docs(shape)
        for member in [*(shape.get("members") or {}).values(), shape.get("member"), shape.get("key"), shape.get("value")]:
            _blank_docs(member)


def default_cache_dir() -> Optional[Path]:
    """$XDG_CACHE_HOME/auditbook/botocore-models, else ~/.cache/…; None without a home. A relative
    XDG_CACHE_HOME is ignored, as the XDG specification says."""
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else (os.path.join(home, ".cache") if home != "~" else None)
    return Path(base, "auditbook", "botocore-models") if base else None


MAX_ENTRY_BYTES = 64 * 2**20  # botocore's largest model is ~5 MB as JSON: anything bigger was not written here


def _private_folder(directory: Path) -> bool:
    """Create `directory` (and its missing parents) 0700, then whether it can be trusted: a real folder of
    this user that nobody else can write, in folders nobody else can rename it out of (each ancestor
    belongs to this user or root and is not writable by others, or is sticky like /tmp)."""
    uid = os.getuid()
    missing = [p for p in [directory, *directory.parents] if not os.path.lexists(p)]
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
    own = os.lstat(directory)
    if not stat.S_ISDIR(own.st_mode) or own.st_uid != uid or own.st_mode & 0o022:
        return False
    for ancestor in directory.parents:
        st = os.stat(ancestor)
        if st.st_uid not in (uid, 0) or (st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX):
            return False
    return True


class ModelCache:
    """Model files as loaded (JSON, documentation blanked), one file per source file version; used only
    in a folder only this user can write (else every model is read from botocore's own files)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._usable: Optional[bool] = None

    def usable(self) -> bool:
        if self._usable is None:
            try:
                self._usable = _private_folder(self.directory)
            except OSError as exc:  # a read-only home, a file in the way…: no cache
                log.debug("model cache %s not used: %s", self.directory, exc)
                self._usable = False
            if not self._usable:
                log.debug("model cache %s not used: not a private folder of this user", self.directory)
        return self._usable

    def entry(self, source: str, st: os.stat_result) -> Path:
        """The entry of one version of a source file: its path, size, inode, modification and change times
        (a file replaced or edited in place, even keeping its size and modification time, is a new entry)."""
        key = "\0".join((CACHE_FORMAT, botocore.__version__, source, str(st.st_size), str(st.st_ino),
                         str(st.st_mtime_ns), str(st.st_ctime_ns)))
        return self.directory / f"{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()}.json"

    def read(self, entry: Path):
        """The entry's model (a JSON object); None if there is none, or it is not a regular file (never
        waiting on a FIFO), is larger than any model, or is not a JSON object."""
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
                    return None
                data = orjson.loads(f.read(MAX_ENTRY_BYTES + 1))
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, entry: Path, data) -> None:
        """Keep `data` under `entry` (atomically: a reader sees the whole entry or none); what cannot be
        kept (a full disk, a model orjson cannot encode) leaves no entry (logged at debug level)."""
        try:
            encoded = orjson.dumps(data)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(encoded)
                os.replace(tmp, entry)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, orjson.JSONEncodeError) as exc:  # the model was loaded from the source all the same
            log.debug("model cache %s not written: %s", self.directory, exc)


class LeanFileLoader(JSONFileLoader):
    """botocore's JSON files parsed with orjson (pinned; ~half the time of json + OrderedDict), service
    models without their documentation, through the cache when there is one."""

    def __init__(self, cache: Optional[ModelCache] = None):
        self.cache = cache

    def _load_file(self, full_path, open_method):
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            cache = self.cache if self.cache is not None and self.cache.usable() else None
            # the version read is the version opened: its entry is named from the open file
            entry = cache.entry(full_path, os.fstat(fp.fileno())) if cache else None
            data = cache.read(entry) if cache else None
            if data is None:
                data = orjson.loads(fp.read())
                if os.path.basename(full_path).startswith(SERVICE_MODEL):
                    strip_docs(data)
                if cache:
                    cache.write(entry, data)
        return data


class LeanLoader(Loader):
    """botocore's Loader, minus its first step: listing every service in every search path (~400
    folders, each listed) once per model type, only to check the one asked for is among them — ~25 ms
    of a small scan. The service's own versions answer the same question: none, UnknownServiceError
    as before (a DataNotFoundError, which paginators and waiters catch)."""

    @instance_cache
    def load_service_model(self, service_name, type_name, api_version=None):
        if not isinstance(service_name, str) or not service_name or "/" in service_name or service_name.startswith("."):
            raise UnknownServiceError(service_name=service_name, known_service_names="")  # never a path
        try:
            versions = self.list_api_versions(service_name, type_name)
        except DataNotFoundError:  # no version of the service has this type
            versions = []
        if not versions:
            raise UnknownServiceError(service_name=service_name,
                                      known_service_names=", ".join(self.list_available_services(type_name)))
        api_version = api_version or max(versions)
        model = self.load_data(os.path.join(service_name, api_version, type_name))
        self._extras_processor.process(model, self._find_extras(service_name, type_name, api_version))
        return model


def lean_loader(search_paths: list[str], cache_dir: Optional[Path] = None) -> Loader:
    """A LeanLoader over `search_paths` (botocore's own, AWS_DATA_PATH…) reading through LeanFileLoader;
    `cache_dir`: default_cache_dir()."""
    directory = cache_dir or default_cache_dir()
    return LeanLoader(extra_search_paths=search_paths, include_default_search_paths=False,
                      file_loader=LeanFileLoader(ModelCache(directory) if directory else None))
