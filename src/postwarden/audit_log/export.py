"""The wire form of an audit event, and the export files (JSON Lines, CSV) built from it.

One form for the API, the export and the command line, so a SIEM reads every source alike.
Exports are produced line by line from a stream of rows and never held whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from postwarden.audit import canonical_time
from postwarden.spreadsheets import csv_text

CSV_COLUMNS: Final = (
    "ID",
    "Sequence",
    "OccurredAt",
    "Action",
    "Via",
    "ActorType",
    "ActorLabel",
    "ActorUserID",
    "ActorTokenID",
    "TargetType",
    "TargetID",
    "TargetLabel",
    "Changes",
    "IP",
    "UserAgent",
    "RequestID",
    "PreviousHash",
    "Hash",
)


def event_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ID": row["id"],
        "Sequence": row["seq"],
        "OccurredAt": canonical_time(row["occurred_at"]),
        "Action": row["action"],
        "Via": row["via"],
        "Actor": {
            "Type": row["actor_credential"],
            "Label": row["actor_label"],
            "UserID": row["actor_user_id"],
            "TokenID": row["actor_token_id"],
        },
        "Target": {"Type": row["target_type"], "ID": row["target_id"], "Label": row["target_label"]},
        "Changes": row["changes"],
        "IP": row["ip"],
        "UserAgent": row["user_agent"],
        "RequestID": row["request_id"],
        "PreviousHash": row["prev_hash"],
        "Hash": row["chain_hash"],
    }


def jsonl_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(event_document(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    yield csv_text([CSV_COLUMNS])
    for row in rows:
        document = event_document(row)
        actor, target = document["Actor"], document["Target"]
        yield csv_text(
            [
                (
                    document["ID"],
                    document["Sequence"],
                    document["OccurredAt"],
                    document["Action"],
                    document["Via"],
                    actor["Type"],
                    actor["Label"],
                    actor["UserID"],
                    actor["TokenID"],
                    target["Type"],
                    target["ID"],
                    target["Label"],
                    json.dumps(document["Changes"], ensure_ascii=False, sort_keys=True),
                    document["IP"],
                    document["UserAgent"],
                    document["RequestID"],
                    document["PreviousHash"],
                    document["Hash"],
                )
            ]
        )
