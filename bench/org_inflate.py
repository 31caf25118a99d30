"""A synthetic larger organisation's store from bench/org.py's (SQLite) one, to time the posture page and
the packet at a size not built on moto: every account's resources, findings, gaps and scopes copied
under new account ids (the first three digits replaced), the run's identities with them. Evidence and
record bodies are shared with the originals (content-addressed), so the packet's evidence/ folder does
not grow — its copy time is the one part this under-states.

    .venv/bin/python bench/org_inflate.py var/bench/org-local.db var/bench/org-1000.db --accounts 1000
    .venv/bin/python bench/org.py --views-only --db sqlite:///var/bench/org-1000.db
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path

CLONED = {  # table: columns holding the account id (besides `account`) as text
    "finding_states": ("resource_id", "resource"),
    "resource_states": ("resource_id", "arn"),
    "gaps": ("resource",),
    "run_scopes": (),
}


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"pragma table_info({table})") if row[1] != "id"]


def inflate(source: Path, target: Path, accounts: int) -> int:
    shutil.copyfile(source, target)
    db = sqlite3.connect(target)
    with db:
        db.execute("delete from packets")  # a packet of the original would be the new one's "previous"
        run_id, identities = db.execute("select id, identities from runs order by id desc limit 1").fetchone()
        originals = json.loads(identities)
        copies = max(1, -(-accounts // len(originals)))  # ceiling
        snapshot = {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in CLONED}
        for k in range(1, copies):
            prefix = f"{900 + k:03d}"
            for table, texts in CLONED.items():  # copy the original rows only (the first `snapshot` rows by id)
                cols = columns(db, table)
                picks = [f"'{prefix}' || substr(account, 4)" if c == "account"
                         else f"replace({c}, account, '{prefix}' || substr(account, 4))" if c in texts else c
                         for c in cols]
                db.execute(f"insert into {table} ({', '.join(cols)}) select {', '.join(picks)} from {table} "
                           f"where id <= (select min(id) from {table}) + {snapshot[table] - 1}")
            originals_copy = [{**i, "account": prefix + i["account"][3:]} for i in originals]
            identities_all = json.loads(db.execute("select identities from runs where id = ?", (run_id,)).fetchone()[0])
            db.execute("update runs set identities = ? where id = ?", (json.dumps(identities_all + originals_copy), run_id))
    db.execute("vacuum")
    db.close()
    return copies * len(originals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--accounts", type=int, default=1000)
    args = ap.parse_args()
    if args.source.resolve() == args.target.resolve():
        ap.error("target: must not be the source")
    print(f"{inflate(args.source, args.target, args.accounts)} accounts in {args.target}")


if __name__ == "__main__":
    main()
