"""Action, callback and block ids, named once (docs/slack.md)."""
from enum import StrEnum


class ActionId(StrEnum):
    CLAIM = "lead_claim"
    CONTACTED = "lead_contacted"
    SQL = "lead_sql"
    WON = "lead_won"
    LOST = "lead_lost"
    DISQUALIFY = "lead_disqualify"
    QUALITY_GOOD = "lead_quality_good"
    QUALITY_BAD = "lead_quality_bad"
    SNOOZE = "lead_snooze"
    REASSIGN = "lead_reassign"
    UNDO = "lead_undo"                 # take back a mistaken outcome (owner or manager)
    KPI_SHARE = "kpi_share"            # value: "week|month:<label>:<as_of ISO>" (the report is reproducible)
    RETRO_ADD_ITEM = "retro_add_item"  # value: the retro's month


class CallbackId(StrEnum):
    LOST = "lead_lost"
    DISQUALIFY = "lead_disqualify"
    RETRO_ITEM = "retro_action_item"
    QUALIFY = "lead_sql"  # SQL in a team with `next`: the note handed to that team (docs/routing.md)


class BlockId(StrEnum):
    CARD_ACTIONS = "lead_actions"
    OWNER_ACTIONS = "owner_actions"
    KPI_ACTIONS = "kpi_actions"
    ITEM = "item"
    REASON = "reason"
    NOTE = "note"
    REMIND_ACTIONS = "remind_actions"  # + ":<lead id>"
    REMIND_MORE = "remind_more"        # + ":<lead id>"
    REASSIGN = "reassign"              # + ":<lead id>": users_select carries no value of its own

