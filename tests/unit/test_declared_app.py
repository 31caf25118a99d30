"""The control room's Declared controls page under Streamlit's AppTest, on a store scanned under
in-process moto (tests/unit/test_declared_store.py): per-criterion counts, the drill-down kept in the
address, the three lists, hostile tag values and names shown as text, and the role guard."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from auditbook.auth import Actor
from tests.unit.test_declared_store import CATALOG, EVIL, build_declared_store

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from auditbook.catalog.model import load_catalog
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("declared-app")
    (root / "controls.yaml").write_text(CATALOG)
    db = f"sqlite:///{root}/store.db"
    build_declared_store(db, root / "controls.yaml")
    return {"db": db, "engine": open_engine(db, create=False), "catalog": load_catalog(root / "controls.yaml")}


@pytest.fixture
def page(store, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")

    def make(role: str = "viewer", query=None):
        at = AppTest.from_file(str(APP / "views" / "declared.py"), default_timeout=60)
        at.session_state["ab_ctx"] = ui.Context(Actor("vic@soc.example", role), "oidc", store["db"], store["engine"],
                                                store["catalog"])
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        return at
    return make


def test_the_page_shows_counts_per_criterion_and_the_three_lists(page):
    at = page()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Declared resources": "6", "Failing their criterion": "2", "Not evidenced by any check": "2",
                       "In scope, untagged": "3", "Tags declaring no criterion": "3"}
    per = at.dataframe[0].value.set_index("criterion")
    assert per.loc["CC6.6", "declared"] == 4 and per.loc["CC6.6", "fail"] == 2
    assert per.loc["CC7.2", "not_evidenced"] == 1 and per.loc["CC7.2", "title"] == "Monitoring for anomalies"
    headers = [h.value for h in at.subheader]
    assert "Declared, failing their criterion's checks (2)" in headers
    assert "Declared, not evidenced by any check (2)" in headers
    assert "In scope, without a SOC2_Control tag (3)" in headers
    failing = at.dataframe[2].value
    assert set(failing["name"]) == {"open-declared", EVIL}
    assert "s3-bucket-public-access-block FAIL" in set(failing["checks"])


def test_the_drill_down_follows_the_address_and_the_state_filter(page):
    at = page(query={"criterion": "A1.2"})
    assert at.selectbox[0].value == "A1.2"
    drill = at.dataframe[1].value
    assert list(drill["name"]) == ["archive-logs"] and list(drill["state"]) == ["NOT_EVIDENCED"]
    at.selectbox[0].set_value("CC6.6").run()
    at.multiselect[0].set_value(["FAIL"]).run()
    assert at.query_params["criterion"] in ("CC6.6", ["CC6.6"])
    assert set(at.dataframe[1].value["state"]) == {"FAIL"} and len(at.dataframe[1].value) == 2


def test_an_address_naming_no_declared_criterion_is_said_and_ignored(page):
    at = page(query={"criterion": "<b>CC9.9</b>"})
    assert not at.exception
    assert any("not in this run" in w.value for w in at.warning)
    assert at.selectbox[0].value == "CC6.6"


def test_hostile_names_and_tag_values_are_text_never_markup(page):
    at = page()
    [invalid] = [d.value for d in at.dataframe if "value" in d.value.columns]
    assert any(EVIL in str(v) for v in invalid["value"])  # in a dataframe: shown as text
    texts = [str(e.value) for e in (*at.markdown, *at.caption, *at.warning, *at.subheader)]
    assert not [t for t in texts if re.search(r"(?<!\\)<img", t)]


def test_a_role_without_posture_is_stopped(store, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")
    at = AppTest.from_file(str(APP / "views" / "declared.py"), default_timeout=60)
    at.session_state["ab_ctx"] = ui.Context(Actor("x", "wall"), "oidc", store["db"], store["engine"], store["catalog"])
    at.run()
    assert [e.value for e in at.error] == ["Your role (wall) may not view posture."]
    assert not at.dataframe and not at.metric
