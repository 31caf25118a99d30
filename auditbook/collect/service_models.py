"""botocore's service models as a scan loads them: parsed with orjson, without their documentation
strings, and kept in a local cache in that form.

A scan creates a client per (service, region) it reads; each service's model files are gzipped JSON
(EC2's model: 3.6 MB of JSON, ~70 % of it documentation auditbook never shows). Gunzipping, parsing and
blanking the documentation of a small scan's ~30 services took ~0.1 s of its ~1.3 s; the cache keeps
each file as it is once loaded (plain JSON, documentation blanked), so the next process parses a third
of the bytes and does nothing else (~0.04 s).

The cache is an optimisation, never a source of truth: an entry is named by the source file's path,
size and modification time (a new botocore, or a model under AWS_DATA_PATH edited in place, is a new
entry); an entry that cannot be read or parsed is read from the source again and rewritten; a cache
folder that cannot be created or written (a read-only home) leaves the models loaded from the source.
It lives in $XDG_CACHE_HOME/auditbook/botocore-models (default ~/.cache/…), a folder only its owner can
read or write (it holds nothing secret: copies of botocore's public model files). `auditbook` never
follows a symbolic link out of it."""
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
    """$XDG_CACHE_HOME/auditbook/botocore-models, else ~/.cache/…; None without a home."""
    home = os.path.expanduser("~")
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(home, ".cache") if home != "~" else None)
    return Path(base, "auditbook", "botocore-models") if base else None


class ModelCache:
    """Model files as loaded (JSON, documentation blanked), one file per (source path, size, mtime)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def entry(self, source: str, st: os.stat_result) -> Path:
        key = "\0".join((CACHE_FORMAT, botocore.__version__, source, str(st.st_size), str(st.st_mtime_ns)))
        return self.directory / f"{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()}.json"

    def read(self, entry: Path):
        """The entry's data; None if there is none, or it is not a regular file of parseable JSON."""
        try:
            fd = os.open(entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return None
                return orjson.loads(f.read())
        except (OSError, orjson.JSONDecodeError):
            return None

    def write(self, entry: Path, data) -> None:
        """Keep `data` under `entry` (atomically: a reader sees the whole entry or none); a folder that
        cannot be written leaves no entry (logged at debug level) and changes nothing else."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(orjson.dumps(data))
                os.replace(tmp, entry)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:  # read-only home, full disk…: the models were loaded from the source
            log.debug("model cache %s not written: %s", self.directory, exc)


class LeanFileLoader(JSONFileLoader):
    """botocore's JSON files parsed with orjson (pinned; ~half the time of json + OrderedDict), service
    models without their documentation, through the cache when there is one."""

    def __init__(self, cache: Optional[ModelCache] = None):
        self.cache = cache

    def _load_file(self, full_path, open_method):
        try:
            st = os.stat(full_path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        entry = self.cache.entry(full_path, st) if self.cache else None
        data = self.cache.read(entry) if entry else None
        if data is None:
            with open_method(full_path, "rb") as fp:
                data = orjson.loads(fp.read())
            if os.path.basename(full_path).startswith(SERVICE_MODEL):
                strip_docs(data)
            if entry:
                self.cache.write(entry, data)
        return data


class LeanLoader(Loader):
    """botocore's Loader, minus its first step: listing every service in every search path (~400
    folders, each listed) once per model type, only to check the one asked for is among them — ~25 ms
    of a small scan. The service's own versions answer the same question: none, UnknownServiceError
    as before (a DataNotFoundError, which paginators and waiters catch)."""

    @instance_cache
    def load_service_model(self, service_name, type_name, api_version=None):
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
