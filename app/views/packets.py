"""Packets: the audit packets built from this store, each verified (signature, every file, chain)."""
import os
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

import ui
from auditbook.errors import UserError
from auditbook.packet.manifest import manifest_sha256, verify_packet
from auditbook.packet.signing import load_public_key
from auditbook.store.models import Packet

ctx = ui.require("view_packets")
st.title("Audit packets")
key_path = os.environ.get("AUDITBOOK_PACKET_PUBLIC_KEY") or str((ui._secrets().get("auditbook", {}) or {}).get("packet_public_key", ""))
key_path = st.text_input("Public key to verify with (PEM)", value=key_path)
public_key, key_problem = None, None
if key_path:
    try:
        public_key = load_public_key(Path(key_path))
    except UserError as exc:
        key_problem = str(exc)
with Session(ctx.engine) as session:
    packets = session.scalars(select(Packet).order_by(Packet.id.desc())).all()
    rows = [{"id": p.id, "period": p.period_label, "path": p.path, "built_at": p.built_at, "manifest": p.manifest_sha256,
             "previous": p.previous_manifest_sha256, "signer": p.signer_algorithm, "key": p.key_id,
             "runs": len(p.run_ids or []), "failed": len(p.failed or [])} for p in packets]
if not rows:
    st.info("No packets built from this store yet: `auditbook packet --period … --out … --signer …`.")
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def check(path: str, manifest: str, key_file: str) -> str:
    folder = Path(path)
    if not folder.is_dir():
        return "missing: the folder is gone"
    result = verify_packet(folder, public_key=load_public_key(Path(key_file)))
    if not result.valid:
        return "INVALID: " + "; ".join(result.problems[:3])
    if result.manifest is not None and manifest_sha256(folder) != manifest:
        return "INVALID: the manifest is not the one recorded when the packet was built"
    return "valid"


for row in rows:
    if key_problem:
        row["verification"] = key_problem
    elif public_key is None:
        row["verification"] = "not checked: give the public key"
    else:
        row["verification"] = check(row["path"], row["manifest"], key_path)
    row["built_at"] = ui.when(row["built_at"])
st.dataframe(pd.DataFrame(rows)[["id", "period", "verification", "built_at", "runs", "failed", "signer", "path",
                                 "manifest", "previous"]], hide_index=True, width="stretch")
