"""Issue 14 §8, a packet organised by the company's controls (`auditbook packet --by company`): the index
lists the company's controls (id, statement, owner, frequency, status) each with its criteria linked to
their pages, each control has its own page (statement, criteria with status and conclusion, checks,
manual items), and those pages are signed and verified like every other file. Built by the CLI on the
packet tests' store (tests/packet_store.py) with a copy of its small catalog that includes a company
library of this test's own (the bundled controls.yaml is never edited)."""
import json

import pytest
import yaml

from tests.conftest import cli
from tests.packet_store import EVIL, PERIOD

LIBRARY = {"version": 1, "company_controls": [
    {"id": "NET-01", "statement": f"Production networks admit no administrative access from the internet {EVIL}",
     "owner": "Head of <b>infrastructure</b>", "frequency": "many-times-a-day", "criteria": ["CC6.6"],
     "checks": ["ec2-sg-no-public-ingress", "s3-bucket-public-access-block"],
     "manual_items": ["CC6.6: Network diagram and boundary description"]},
    {"id": "GOV-01", "statement": "Everyone signs the code of conduct; backups are kept.", "owner": "People ops",
     "frequency": "annual", "criteria": ["CC1.1", "A1.2"], "checks": ["s3-versioning"],
     "manual_items": ["CC1.1: Code of conduct"]},
]}


def _catalog_with_library(history_store, folder):
    folder.mkdir(exist_ok=True)
    raw = yaml.safe_load(open(history_store["catalog"]).read())
    raw = {"version": raw.pop("version"), "include": "company-lib.yaml", **raw}
    (folder / "company-lib.yaml").write_text(yaml.safe_dump(LIBRARY, sort_keys=False))
    path = folder / "controls.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def company_packet(history_store, packet_keys):
    catalog = _catalog_with_library(history_store, history_store["root"] / "with-library")
    out = history_store["root"] / "by-company"
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out), "--by", "company",
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"], "--catalog", str(catalog))
    assert r.returncode == 0, r.stderr
    return out


def test_the_index_lists_the_company_controls_each_with_its_criteria_linked(company_packet):
    index = (company_packet / "index.html").read_text()
    first = index.index('id="by-company"')
    assert first < index.index(">Posture by category")  # organised by them: they come first
    assert '<a href="company/NET-01.html">NET-01</a>' in index and '<a href="company/GOV-01.html">GOV-01</a>' in index
    assert '<a href="criteria/CC1.1.html">CC1.1</a> <span class="ab-status' in index
    assert '<a href="criteria/A1.2.html">A1.2</a>' in index
    assert "[&#x27;" not in index and "['" not in index  # no Python list shown as text
    assert "Head of &lt;b&gt;infrastructure&lt;/b&gt;" in index and EVIL not in index
    overview = {r["criterion"]: r["status"] for r in json.loads((company_packet / "data" / "overview.json").read_text())}
    company = {r["id"]: r for r in json.loads((company_packet / "data" / "company-controls.json").read_text())}
    assert company["NET-01"]["status"] == overview["CC6.6"]  # the worst of its one criterion's
    assert f'ab-status ab-{company["GOV-01"]["status"]}' in index


def test_each_company_control_has_a_page_with_its_criteria_checks_and_items(company_packet):
    page = (company_packet / "company" / "NET-01.html").read_text()
    assert "Production networks admit no administrative access" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and EVIL not in page and "<b>infrastructure" not in page
    assert 'href="../assets/notebook.css"' in page and "<script" not in page  # offline, nothing to run
    assert '<a href="../criteria/CC6.6.html">CC6.6</a>' in page and "exceptions noted: " in page
    assert "ec2-sg-no-public-ingress" in page and "s3-bucket-public-access-block" in page
    assert "vpc-flow-logs-enabled" not in page  # only the checks the control names
    assert "Network diagram and boundary description" in page
    gov = (company_packet / "company" / "GOV-01.html").read_text()
    assert '<a href="../criteria/CC1.1.html">CC1.1</a>' in gov and '<a href="../criteria/A1.2.html">A1.2</a>' in gov
    assert "Code of conduct" in gov and "s3-versioning" in gov


def test_company_pages_are_signed_and_verified(company_packet, packet_keys, tmp_path):
    import shutil
    manifest = json.loads((company_packet / "manifest.json").read_bytes())
    assert manifest["organised_by"] == "company"
    assert manifest["company_controls"] == [{"id": "NET-01", "page": "company/NET-01.html"},
                                            {"id": "GOV-01", "page": "company/GOV-01.html"}]
    assert {"company/NET-01.html", "company/GOV-01.html"} <= {f["path"] for f in manifest["files"]}
    assert cli("verify", str(company_packet), "--public-key", str(packet_keys["pub"])).stdout.strip() == "valid"
    copy = tmp_path / "copy"
    shutil.copytree(company_packet, copy)
    page = copy / "company" / "NET-01.html"
    page.write_text(page.read_text().replace("no administrative access", "all access"))
    r = cli("verify", str(copy), "--public-key", str(packet_keys["pub"]))
    assert r.returncode == 1 and "company/NET-01.html" in r.stderr


@pytest.mark.parametrize("by, with_library, message", [
    ("controls", True, "--by: 'controls' is not one of criteria, company"),
    ("company", False, "--by company: the catalog "),
])
def test_a_bad_by_is_one_line_and_writes_nothing(history_store, packet_keys, tmp_path, by, with_library, message):
    catalog = _catalog_with_library(history_store, tmp_path / "cat") if with_library else history_store["catalog"]
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(tmp_path / "p"), "--by", by,
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"], "--catalog", str(catalog))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: " + message) and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "p").exists()
