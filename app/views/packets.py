"""Packets: the audit packets built from this store, each verified (signature, every file, chain).

The public key to verify with is pasted as PEM text or uploaded (at most MAX_KEY_BYTES), or is the
one the operator configured (AUDITBOOK_PACKET_PUBLIC_KEY or [auditbook] packet_public_key). The page
never opens a path typed into it."""
import os
from pathlib import Path

import pandas as pd
import streamlit as st
import ui
from cryptography.hazmat.primitives import serialization

from auditbook.errors import UserError
from auditbook.report.packet.manifest import verify_packet
from auditbook.report.packet.records import built_packets
from auditbook.report.packet.signing import key_id, read_key_file

MAX_KEY_BYTES = 16 * 1024  # a PEM public key is a few hundred bytes


def public_key(pem: bytes, source: str):
    if len(pem) > MAX_KEY_BYTES:
        raise UserError(f"{source}: larger than {MAX_KEY_BYTES // 1024} KiB: not a public key")
    try:
        return serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise UserError(f"{source}: not a PEM public key (-----BEGIN PUBLIC KEY----- …)")


def configured_key() -> tuple[bytes, str]:
    """The operator's key file (its path is configuration, not user input), read bounded."""
    path = os.environ.get("AUDITBOOK_PACKET_PUBLIC_KEY") or str(
        (ui.secrets().get("auditbook", {}) or {}).get("packet_public_key", ""))
    if not path:
        return b"", ""
    source = f"configured key {path}"
    return read_key_file(Path(path), "configured key"), source  # a regular file, bounded: never a FIFO or device


def chosen_key() -> tuple[bytes, str]:
    """Pasted text, else the uploaded file, else the configured key; (b"", "") when none."""
    pasted = st.text_area("Public key to verify with (paste the PEM text)", max_chars=MAX_KEY_BYTES,
                          placeholder="-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----")
    uploaded = st.file_uploader("…or upload the public key file (.pub, .pem)", type=["pub", "pem"])
    if pasted.strip():
        return pasted.strip().encode(), "pasted key"
    if uploaded is not None:
        if uploaded.size > MAX_KEY_BYTES:
            raise UserError(f"uploaded file {uploaded.name}: larger than {MAX_KEY_BYTES // 1024} KiB: not a public key")
        return uploaded.getvalue(), f"uploaded file {uploaded.name}"
    return configured_key()


@st.cache_data(ttl=60, show_spinner=False)
def check(path: str, manifest: str, pem: bytes) -> str:
    folder = Path(path)
    if not folder.is_dir():
        return "missing: the folder is gone"
    result = verify_packet(folder, public_key=public_key(pem, "key"))
    if not result.valid:
        return "INVALID: " + "; ".join(result.problems[:3])
    if result.manifest is not None and result.manifest_sha256 != manifest:
        return "INVALID: the manifest is not the one recorded when the packet was built"
    return "valid"


ctx = ui.require("view_packets")
st.title("Audit packets")
pem, source, key_problem = b"", "", None
try:
    pem, source = chosen_key()
    if pem:
        st.caption(f"Verifying with the {ui.md(source)} ({key_id(public_key(pem, source))})")
except UserError as exc:
    key_problem = str(exc)
    ui.say("error", exc)
rows = [{**p, "runs": len(p["run_ids"]), "failed": len(p["failed"])} for p in built_packets(ctx.engine)]
if not rows:
    st.info("No packets built from this store yet: `auditbook packet --period … --out … --signer …`.")
    st.stop()

for row in rows:
    if key_problem:
        row["verification"] = "not checked: " + key_problem
    elif not pem:
        row["verification"] = "not checked: give the public key"
    else:
        row["verification"] = check(row["path"], row["manifest"], pem)
    row["built_at"] = ui.when(row["built_at"])
st.dataframe(pd.DataFrame(rows)[["id", "period", "verification", "built_at", "runs", "failed", "signer", "path",
                                 "manifest", "previous"]], hide_index=True, width="stretch")
