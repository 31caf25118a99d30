"""What makes an organisation's packet cheaper to build (issue 16 §4) keeps every value it had: JSON
columns decoded by orjson read back exactly what json read (NaN, integers past 64 bits, lone
surrogates included), the ASCII shortcut of the spreadsheet-formula test agrees with the general rule,
a data CSV is the same bytes cell for cell and written once per build, CloudTrail coverage read for all
pairs at once is what each pair read alone gives, and the packet index reads the data files its build
wrote rather than computing them a second time."""
import datetime as dt
import json
import random
import unicodedata

import pandas as pd
import pytest

from auditbook.history.populations import FORMULA_START, _formula_like, neutralised
from auditbook.report.packet.data import written_or
from auditbook.report.page_helpers import csv_text, data_csv
from auditbook.store import changes as stored_changes
from auditbook.store.db import json_loads, open_engine
from auditbook.store.session import reading, writing

UTC = dt.timezone.utc


def _formula_like_by_the_general_rule(text: str) -> bool:
    if text.startswith(FORMULA_START):
        return True
    lead = unicodedata.normalize("NFKC", text[:64])
    skipped = next((i for i, ch in enumerate(lead) if not (ch.isspace() or unicodedata.category(ch) == "Cf")),
                   len(lead))
    return lead[skipped:].startswith(FORMULA_START)


def test_the_ascii_shortcut_of_the_formula_test_agrees_with_the_general_rule():
    rng = random.Random(16)
    alphabet = [chr(i) for i in range(128)] + ["\u200b", "\ufeff", "\uff1d", "\u3000", "\u00e9"]
    texts = [" " * 63 + "=", " " * 64 + "=", "\x1f=1", "\x0b-1", "", "a=b", "'quoted"]
    texts += ["".join(rng.choice(alphabet if rng.random() < 0.3 else " \t\x1c=+-@a'\r\n")
                      for _ in range(rng.randint(0, 70))) for _ in range(20000)]
    # a printable first character followed by what NFKC composes or replaces (combining marks, full-width
    # forms, zero-width characters): the first-character shortcut
    marks = ["\u0300", "\u0301", "\u0338", "\u20d2", "\u0327", "\uff1d", "\uff0b", "\u200b", "\ufeff", "\u3000"]
    texts += [chr(rng.randint(0x21, 0x7E)) + "".join(rng.choice(marks + ["=", " ", "a"]) for _ in range(rng.randint(0, 6)))
              for _ in range(20000)]
    assert [_formula_like(t) for t in texts] == [_formula_like_by_the_general_rule(t) for t in texts]
    assert any(_formula_like(t) for t in texts) and not all(_formula_like(t) for t in texts)


@pytest.mark.parametrize("text", ['{"a": NaN, "b": -Infinity}', "[123456789012345678901234567890]",
                                  "[9223372036854775807, -9223372036854775808, 18446744073709551615]",
                                  '"\\ud800 alone"', '{"a": 1, "a": 2}', "[1e400, -0.0, 0.1, 1.7976931348623157e308]",
                                  '{"arn": "arn:aws:iam::123456789012:role/x", "n": [1, 2.5, null, true]}'])
def test_json_columns_read_back_what_json_reads(text):
    assert repr(json_loads(text)) == repr(json.loads(text))
    assert repr(json_loads(text.encode())) == repr(json.loads(text))


def test_a_bad_json_column_is_still_an_error():
    with pytest.raises(ValueError):
        json_loads("{not json")


def test_a_stored_json_value_round_trips_through_the_store(tmp_path):
    from auditbook.store import settings
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    value = {"big": 2 ** 70, "nan_free": [1.5, -0.0], "text": "caf\u00e9 \u202e", "nested": {"k": [None, True]}}
    with writing(engine) as session:
        settings.write(session, "probe", value)
    with reading(engine) as session:
        assert settings.read(session, "probe") == value
        assert type(settings.read(session, "probe")["big"]) is int


FRAME = pd.DataFrame({"a": ["x", "=1", None, "-2"], "b": [1, -2, 3, 4], "c": [1.5, float("nan"), -0.5, 2.0],
                      "d": [["a", "b"], ("=c",), None, []],
                      "e": pd.to_datetime(["2026-01-01", None, "2026-02-02T10:00:00Z", "2026-03-03"], utc=True,
                                          format="mixed"),
                      "f": [True, False, None, True], "g": [dt.date(2026, 1, 1), None, dt.datetime(2026, 1, 1, 5), pd.NA]})


def test_a_data_csv_is_the_frame_cell_for_cell_neutralised(tmp_path):
    frame = FRAME.copy()
    frame.columns = ["a", "b", "c", "d", "a", "f", "g"]  # a repeated column name stays two columns
    assert data_csv(frame, str(tmp_path), "x.csv") == "x.csv"
    expected = frame.map(lambda v: neutralised(csv_text(v))).to_csv(index=False)
    written = (tmp_path / "data" / "x.csv").read_text(encoding="utf-8")
    assert written == expected and "'=1" in written and "'-2" in written and "2026-02-02T10:00:00+00:00" in written


@pytest.mark.parametrize("seed", range(5))
def test_a_data_csv_writes_what_pandas_writes_for_hostile_cells(tmp_path, seed):
    """data_csv writes its rows with the csv module itself: the same bytes as DataFrame.to_csv of the
    neutralised cells, for quotes, commas, line breaks, carriage returns, empty and repeated texts,
    formula starts, full-width and zero-width characters, and a frame of one column of empty texts."""
    import random
    rng = random.Random(seed)
    alphabet = ['a', ' ', ',', '"', "'", '\n', '\r', '\t', '=', '+', '-', '@', '\uff1d', '\u200b', '\ufeff', 'é', '€', '\x00']
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(300)]
    frame = pd.DataFrame({"message": [rng.choice(texts[:5]) for _ in range(300)], "resource": texts,
                          "n": [rng.choice([1, -1, None, 2.5]) for _ in range(300)],
                          "tags": [rng.choice([["x", "=y"], [], None, ("a,b",)]) for _ in range(300)],
                          "seen": pd.to_datetime([rng.choice(["2026-10-01T06:00:00Z", "2026-10-02T06:00:00.5Z", None])
                                                  for _ in range(300)], utc=True, format="mixed"),
                          "day": pd.to_datetime([rng.choice(["2026-10-01", "2026-10-03", None]) for _ in range(300)])})
    # texts and times are taken apart into their distinct values (pandas' own dtypes), the rest cell by cell
    assert isinstance(frame["message"].dtype, pd.StringDtype) and isinstance(frame["resource"].dtype, pd.StringDtype)
    assert str(frame["seen"].dtype).endswith(", UTC]") and frame["day"].isna().any() and frame["tags"].dtype == object
    for name, df in (("many.csv", frame), ("empty-texts.csv", pd.DataFrame({"only": ["", "", "x"]}))):
        assert data_csv(df, str(tmp_path), name) == name
        expected = df.map(lambda v: neutralised(csv_text(v))).to_csv(index=False)
        assert (tmp_path / "data" / name).read_bytes().decode("utf-8") == expected, name  # no newline translation


def test_a_data_csv_another_notebook_of_the_build_wrote_is_not_written_again(tmp_path):
    data_csv(FRAME, str(tmp_path), "latest-run1-check.csv")
    path = tmp_path / "data" / "latest-run1-check.csv"
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
    assert data_csv(FRAME.head(1), str(tmp_path), "latest-run1-check.csv") == "latest-run1-check.csv"
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["latest-run1-check.csv"]  # no temporary left


def _coverage(account, region, first, hours, source):
    first = dt.datetime(2026, 10, 1, tzinfo=UTC) + dt.timedelta(hours=first)
    return {"account": account, "region": region, "first_at": first, "last_at": first + dt.timedelta(hours=hours),
            "source": source, "records": 1, "unread": 0}


def test_coverage_read_for_every_pair_at_once_is_what_each_pair_reads_alone(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/c.db")
    rows = [_coverage(a, r, h, 2, f"s3://{a}/{r}/{h}") for a in ("111111111111", "222222222222")
            for r in ("eu-west-1", "us-east-1") for h in (-30, -20, 1, 5, 30, 90)]
    rows.append(_coverage("111111111111", "eu-west-1", -4, 5, "s3://straddles-the-start"))
    with writing(engine) as session:
        stored_changes.add_coverage(session, rows)
    since, until = dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 10, 3, tzinfo=UTC)
    with reading(engine) as session:
        together = stored_changes.coverage_by_pair(session, since, until)
        alone = {(a, r): stored_changes.coverage(session, a, r, since, until)
                 for a in ("111111111111", "222222222222", "333333333333") for r in ("eu-west-1", "us-east-1")}
    assert {k: v for k, v in alone.items() if v} == together and alone[("333333333333", "eu-west-1")] == []
    assert [c["source"] for c in together[("111111111111", "eu-west-1")]] == [
        "s3://straddles-the-start", "s3://111111111111/eu-west-1/1", "s3://111111111111/eu-west-1/5",
        "s3://111111111111/eu-west-1/30"]  # ended before the window: left out; after it: never read


def test_the_index_reads_a_data_file_its_build_wrote_and_computes_otherwise(tmp_path):
    computed = []

    def compute():
        computed.append(1)
        return [{"criterion": "CC6.1", "status": "PASS"}]
    assert written_or(None, "overview.json", compute) == [{"criterion": "CC6.1", "status": "PASS"}]
    assert written_or(str(tmp_path), "overview.json", compute) == [{"criterion": "CC6.1", "status": "PASS"}]
    assert len(computed) == 2
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "overview.json").write_text('[{"criterion":"CC1.1","status":"FAIL"}]', encoding="utf-8")
    assert written_or(str(tmp_path), "overview.json", compute) == [{"criterion": "CC1.1", "status": "FAIL"}]
    assert len(computed) == 2
