"""botocore's service models as a scan loads them (collect/service_models.py): the same models as
botocore's own loader, documentation blanked, kept in a local cache that is only ever an optimisation —
a stale, broken, linked or unwritable cache changes nothing but the time."""
import gzip
import os
import shutil
from pathlib import Path

import botocore
import orjson
import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.loaders import Loader

from auditbook.collect.service_models import ModelCache, lean_loader, strip_docs

BOTOCORE_DATA = os.path.join(os.path.dirname(botocore.__file__), "data")


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.suffix == ".json") if cache.exists() else []


@pytest.fixture
def sts_only(tmp_path):
    """A search path holding only STS's model (a copy, so that tests can touch it)."""
    source = Path(BOTOCORE_DATA, "sts")
    version = sorted(os.listdir(source))[-1]
    shutil.copytree(source / version, tmp_path / "models" / "sts" / version)
    return tmp_path / "models", tmp_path / "models" / "sts" / version / "service-2.json.gz"


@pytest.mark.parametrize("service", ["ec2", "s3", "sts"])
def test_the_models_are_botocores_without_documentation(tmp_path, service):
    botocores = Loader(extra_search_paths=[BOTOCORE_DATA], include_default_search_paths=False)
    expected = botocores.load_service_model(service, "service-2")
    strip_docs(expected)
    expected = orjson.loads(orjson.dumps(expected))  # OrderedDicts as dicts
    cold = lean_loader([BOTOCORE_DATA], tmp_path / "cache").load_service_model(service, "service-2")
    warm = lean_loader([BOTOCORE_DATA], tmp_path / "cache").load_service_model(service, "service-2")
    assert cold == expected and warm == expected
    assert any(op.get("documentation") is not None for op in expected["operations"].values())
    assert all(op.get("documentation", "") == "" for op in warm["operations"].values())
    for kind in ("paginators-1", "endpoint-rule-set-1"):
        assert (lean_loader([BOTOCORE_DATA], tmp_path / "cache").load_service_model(service, kind)
                == orjson.loads(orjson.dumps(botocores.load_service_model(service, kind))))


def test_a_second_loader_reads_the_cache_not_the_source(sts_only, tmp_path):
    search, source = sts_only
    cache = tmp_path / "cache"
    lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    (entry,) = _entries(cache)
    assert oct(cache.stat().st_mode & 0o777) == oct(0o700)
    entry.write_bytes(orjson.dumps({"metadata": {"marker": "from the cache"}}))
    again = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    assert again == {"metadata": {"marker": "from the cache"}}


def test_a_changed_source_is_a_new_entry(sts_only, tmp_path):
    search, source = sts_only
    cache = tmp_path / "cache"
    lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    (entry,) = _entries(cache)
    entry.write_bytes(orjson.dumps({"stale": True}))
    with gzip.open(source, "rb") as f:
        model = orjson.loads(f.read())
    model["metadata"]["serviceFullName"] = "edited in place"
    with gzip.open(source, "wb") as f:
        f.write(orjson.dumps(model))
    os.utime(source, ns=(1, 1))
    fresh = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    assert fresh["metadata"]["serviceFullName"] == "edited in place"
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize("broken", [b"", b"{not json", b'{"cut": "in the mid', b"\xff\xfe"])
def test_a_broken_entry_is_read_from_the_source_and_rewritten(sts_only, tmp_path, broken):
    search, _ = sts_only
    cache = tmp_path / "cache"
    expected = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    (entry,) = _entries(cache)
    entry.write_bytes(broken)
    assert lean_loader([str(search)], cache).load_service_model("sts", "service-2") == expected
    assert orjson.loads(entry.read_bytes()) == expected


def test_a_linked_entry_is_not_followed_nor_its_target_written(sts_only, tmp_path):
    search, _ = sts_only
    cache = tmp_path / "cache"
    expected = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    (entry,) = _entries(cache)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(orjson.dumps({"planted": True}))
    entry.unlink()
    entry.symlink_to(elsewhere)
    assert lean_loader([str(search)], cache).load_service_model("sts", "service-2") == expected
    assert orjson.loads(elsewhere.read_bytes()) == {"planted": True}  # the link was replaced, not written through
    assert not entry.is_symlink()


def test_an_unwritable_cache_leaves_the_models_loaded(sts_only, tmp_path):
    search, _ = sts_only
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    model = lean_loader([str(search)], blocked / "cache").load_service_model("sts", "service-2")
    assert model["metadata"]["endpointPrefix"] == "sts"
    assert blocked.read_text() == "not a folder"


def test_no_temporary_file_is_left_behind(sts_only, tmp_path):
    search, _ = sts_only
    cache = tmp_path / "cache"
    loader = lean_loader([str(search)], cache)
    for kind in ("service-2", "paginators-1", "endpoint-rule-set-1"):
        loader.load_service_model("sts", kind)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json"] * 3


def test_unknown_services_and_missing_model_types_fail_as_botocore_does(tmp_path):
    loader = lean_loader([BOTOCORE_DATA], tmp_path / "cache")
    with pytest.raises(UnknownServiceError) as raised:
        loader.load_service_model("no-such-service", "service-2")
    assert "ec2" in str(raised.value)  # the known services, as botocore lists them
    with pytest.raises(DataNotFoundError):  # STS has no waiters: what botocore's waiter code catches
        loader.load_service_model("sts", "waiters-2")


def test_the_default_cache_folder_follows_xdg(monkeypatch, tmp_path):
    from auditbook.collect.service_models import default_cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "auditbook" / "botocore-models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "auditbook" / "botocore-models"


def test_entries_are_named_by_source_size_and_time(tmp_path):
    cache = ModelCache(tmp_path)
    st = os.stat(__file__)
    assert cache.entry("/a/service-2.json.gz", st) == cache.entry("/a/service-2.json.gz", st)
    assert cache.entry("/a/service-2.json.gz", st) != cache.entry("/b/service-2.json.gz", st)


# -- the attack pass: a cache someone else can write is never used; a hostile entry is never trusted ----

def _plant(cache: Path, search: Path, data: bytes) -> Path:
    """The entry the loader would read for sts's service model, holding `data`."""
    source = next(search.glob("sts/*/service-2.json.gz"))
    entry = ModelCache(cache).entry(str(source), os.stat(source))
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(data)
    return entry


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_cache_folder_others_can_write_is_not_used(sts_only, tmp_path, mode):
    search, _ = sts_only
    cache = tmp_path / "shared-cache"
    entry = _plant(cache, search, orjson.dumps({"metadata": {"planted": "by another user"}}))
    cache.chmod(mode)
    model = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    assert model["metadata"]["endpointPrefix"] == "sts" and "planted" not in model["metadata"]
    assert [p.name for p in cache.iterdir()] == [entry.name]  # nothing written there either


def test_a_cache_folder_that_is_a_link_is_not_used(sts_only, tmp_path):
    search, _ = sts_only
    real = tmp_path / "real"
    _plant(real, search, orjson.dumps({"metadata": {"planted": True}}))
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    model = lean_loader([str(search)], tmp_path / "link").load_service_model("sts", "service-2")
    assert "planted" not in model["metadata"]


def test_a_cache_in_a_folder_others_can_rename_it_out_of_is_not_used(sts_only, tmp_path):
    search, _ = sts_only
    parent = tmp_path / "open-parent"
    parent.mkdir()
    parent.chmod(0o777)  # not sticky: anyone could swap the cache folder for theirs
    model = lean_loader([str(search)], parent / "cache").load_service_model("sts", "service-2")
    assert model["metadata"]["endpointPrefix"] == "sts" and not any((parent / "cache").glob("*.json"))
    parent.chmod(0o1777)  # sticky, like /tmp: only the owner may rename it
    lean_loader([str(search)], parent / "cache").load_service_model("sts", "service-2")
    assert len(list((parent / "cache").glob("*.json"))) == 1


def test_missing_parents_are_created_private(sts_only, tmp_path):
    search, _ = sts_only
    lean_loader([str(search)], tmp_path / "a" / "b" / "cache").load_service_model("sts", "service-2")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "cache"):
        assert oct(folder.stat().st_mode & 0o777) == oct(0o700), folder


def test_a_fifo_entry_is_not_waited_on(sts_only, tmp_path):
    import threading
    search, _ = sts_only
    cache = tmp_path / "cache"
    entry = _plant(cache, search, b"")
    entry.unlink()
    os.mkfifo(entry)
    result = []
    loading = threading.Thread(target=lambda: result.append(
        lean_loader([str(search)], cache).load_service_model("sts", "service-2")), daemon=True)
    loading.start()
    loading.join(10)
    assert result and result[0]["metadata"]["endpointPrefix"] == "sts"


@pytest.mark.parametrize("kind", ["huge", "array", "number", "string"])
def test_an_entry_that_cannot_be_a_model_is_not_used(sts_only, tmp_path, kind):
    search, _ = sts_only
    cache = tmp_path / "cache"
    entry = _plant(cache, search, {"huge": b"", "array": b"[]", "number": b"0", "string": b'"x"'}[kind])
    if kind == "huge":
        with open(entry, "r+b") as f:  # sparse: 3 GB that cost no disk
            f.truncate(3 * 2**30)
    model = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    assert model["metadata"]["endpointPrefix"] == "sts"


def test_an_edit_in_place_keeping_the_modification_time_is_a_new_entry(sts_only, tmp_path):
    search, source = sts_only
    cache = tmp_path / "cache"
    lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    with gzip.open(source, "rb") as f:
        model = orjson.loads(f.read())
    before = os.stat(source)
    model["metadata"]["serviceId"] = "STS"[::-1]
    raw = gzip.compress(orjson.dumps(model), mtime=0)
    source.write_bytes(raw)
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # `touch -r`: the old modification time
    fresh = lean_loader([str(search)], cache).load_service_model("sts", "service-2")
    assert fresh["metadata"]["serviceId"] == "STS"[::-1]


def test_a_model_orjson_cannot_encode_is_loaded_not_kept(tmp_path):
    cache = ModelCache(tmp_path / "cache")
    assert cache.usable()
    deep: dict = {}
    node = deep
    for _ in range(300):  # orjson encodes at most 254 levels
        node["x"] = {}
        node = node["x"]
    cache.write(cache.directory / "deep.json", deep)
    assert not any(cache.directory.glob("*.json")) and not any(cache.directory.glob(".*.tmp"))


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    from auditbook.collect.service_models import default_cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "auditbook" / "botocore-models"


@pytest.mark.parametrize("name", ["ec2/../sts", "../sts", ".", "", "sts/"])
def test_a_service_name_is_never_a_path(tmp_path, name):
    with pytest.raises(UnknownServiceError):
        lean_loader([BOTOCORE_DATA], tmp_path / "cache").load_service_model(name, "service-2")
