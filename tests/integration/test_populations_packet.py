"""The packet's change and access populations declare their completeness (issue 14 §3): each account
and region the period's runs read that no CloudTrail input covered is a limit heading the population's
CSV, whose rows still hash as the population (the recorded draws re-draw from the packet alone)."""
import csv

from tests.packet_store import PERIOD


def test_the_change_population_is_headed_by_its_completeness_limits(signed_packet, history_store):
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period
    from auditbook.history.populations import population, read_csv, rows_sha256
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(history_store["db"]), load_catalog(history_store["catalog"])
    period = parse_period(start=PERIOD[0], end=PERIOD[1])
    for kind in ("changes", "access"):
        path = signed_packet / "data" / f"population-{kind}.csv"
        with open(path, newline="", encoding="utf-8") as f:
            heading = [row[0] for row in csv.reader(f) if row and row[0].startswith("#")]
        expected = population(engine, catalog, kind, period).completeness
        assert expected["accounts_regions"] and expected["limits"]  # the test store read no CloudTrail at all
        assert heading[0].startswith("# completeness: ") and len(heading) == 1 + len(expected["limits"])
        assert all("not covered: account " in line for line in heading[1:])
        assert rows_sha256(read_csv(path)) == population(engine, catalog, kind, period).sha256
