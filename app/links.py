"""Links between the control room's pages that any page may build (no Streamlit needed to make one)."""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlencode

RESOURCE_PAGE = "resource"  # the url_path of views/resource.py (control_room.py)


def resource_link(arn: str, resource_type: Optional[str] = None) -> str:
    """The resource timeline of `arn` (a finding's `resource`, an alert's `resource` label, an evidence
    row's `resource`): a relative URL, e.g. for st.column_config.LinkColumn or st.markdown. Pass
    `resource_type` for an account's singletons ("<account>/<region>" names several)."""
    query = {"arn": arn, **({"type": resource_type} if resource_type else {})}
    return f"{RESOURCE_PAGE}?{urlencode(query)}"
