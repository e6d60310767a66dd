"""Every command's help and usage line, and the bot's other words, in one place and one voice."""

from __future__ import annotations

HELP = {
    "/ai-key": (
        "*/ai-key* — your API keys\n"
        "• `/ai-key new [name] [--project P] [--limit $N] [--for 8h|3d|2w]` ask for a key (no arguments opens a form); "
        "`--for` leases it: it stops then, and you get a DM with Extend a day and an hour before\n"
        "• `/ai-key list` your keys (admins: `list --all`)\n"
        "• `/ai-key rotate <key>` a new secret; the old one works for a grace period\n"
        "• `/ai-key revoke <key>` stop a key for good\n"
        "Add `-w <workspace>` when you are in more than one workspace."
    ),
    "/ai-invite": (
        "*/ai-invite* — bring people in\n"
        "• `/ai-invite @ada @lin ada@example.com [--role developer|viewer|billing|admin]`\n"
        "Admins invite at once; a Developer's invitation goes to the admins as a request."
    ),
    "/ai-team": (
        "*/ai-team* — who is in the workspace\n"
        "• `/ai-team list`\n"
        "• `/ai-team role @someone <admin|developer|viewer|billing>` (Developers: asks the admins)\n"
        "• `/ai-team remove @someone` (their keys are revoked); `/ai-team leave`\n"
        "• `/ai-team review` (Admins): an access review now — each Admin gets the members and keys by DM to Keep, Revoke or Transfer"
    ),
    "/ai-budget": (
        "*/ai-budget* — budgets and the spending cap\n"
        "• `/ai-budget show`\n"
        "• `/ai-budget set <project> $N [--period monthly]` (creates the project if new)\n"
        "• `/ai-budget request <project> $N --reason \"…\"` ask the admins\n"
        "• `/ai-budget raise <project> +$N --for 3d --reason \"…\"` ask for a temporary raise (hours `12h` or days `3d`, up to 31 days): "
        "once approved it counts at once, and it ends by itself, even past the end of a budget period\n"
        "• `/ai-budget cap $N [--period monthly]` the workspace's spending cap (`--reason` makes it a request)\n"
        "• `/ai-budget pause <project> --reason \"…\"`, `/ai-budget resume <project>`"
    ),
    "/ai-credits": (
        "*/ai-credits* — the shared credit pool\n"
        "• `/ai-credits balance`\n"
        "• `/ai-credits add $N` (Billing Managers and Admins; others: `--reason` asks)\n"
        "• `/ai-credits statement [--month 2026-11]` the monthly statement: opening and closing balance, top-ups, spend by project, "
        "member and model, corrections, the cap and budgets, the audit chain — here and in your DMs with a chart and a CSV "
        "(Billing Managers and Admins; without `--month`, this month so far, a preview). Each month's closes on the 1st and goes to them all"
    ),
    "/ai-usage": (
        "*/ai-usage* — spend, with a chart sent to your DM\n"
        "• `/ai-usage [--period day|week|month|last-month] [--by project|member|key|model]` — this month by project unless you say otherwise\n"
        "• `--project P` one project · `--mine` only your keys · `--days N` the last N days instead of a period · `--no-chart` text only\n"
        "Developers see their own keys' spend; Viewers, Billing Managers and Admins the whole workspace's."
    ),
    "/ai-audit": "*/ai-audit* — the audit log (Admins)\n• `/ai-audit recent [N]`\n• `/ai-audit verify`\n• `/ai-audit export [csv|jsonl]`",
    "/ai-workspace": (
        "*/ai-workspace* — workspaces and their settings\n"
        "• `/ai-workspace list`\n"
        "• `/ai-workspace create <name> [--env production|staging|development]` (Admins)\n"
        "• `/ai-workspace use <name>` bind this channel to a workspace\n"
        "• `/ai-workspace link [openrouter-slug]` put the workspace on OpenRouter, in the OpenRouter workspace of that slug (Admins)\n"
        "• `/ai-workspace policy [show|set <rule>; …|reset|approval|auto]` who approves which requests; `policy help` explains the rules (Admins change them)\n"
        "• `/ai-workspace channels approvals=#c alerts=#c audit=#c`\n"
        "• `/ai-workspace allowlist add|remove <CIDR>`\n"
        "• `/ai-workspace templates [role $N [--period monthly] [--lifetime 90]]`\n"
        "• `/ai-workspace delete <name>` says what deleting does; `--confirm <name>` does it (Admins)\n"
        "• `/ai-workspace models` which models keys may call, per workspace and per project\n"
        "• `/ai-workspace models allow <author/name|author/*>… [--project P]` only these models (Admins)\n"
        "• `/ai-workspace models providers <provider>…|any [--project P]`, `models zdr on|off [--project P]`\n"
        "• `/ai-workspace models any [--project P]` any model again; `models reset --project P` the project follows the workspace\n"
        "• `/ai-workspace scim` provisioning from Okta or Entra ID: `scim token [name]` (shown once), `scim map <group> <role>`, `scim unmap <group>`, `scim default <role|none>`, `scim revoke <name>` (Admins; docs/scim.md)"
    ),
    "/ai-models": (
        "*/ai-models* — the models your keys may call\n"
        "• `/ai-models [--project P]` the catalog as the policy allows it, with prices\n"
        "• `/ai-models request <author/name> [--project P] --reason \"…\"` ask the Admins for a model outside the policy"
    ),
}

USAGE = {
    "/ai-key": "Usage: `/ai-key new|list|rotate|revoke …` — `/ai-key help` explains.",
    "/ai-invite": "Usage: `/ai-invite @someone… | email… [--role developer]` — `/ai-invite help` explains.",
    "/ai-team": "Usage: `/ai-team list | role @someone <role> | remove @someone | leave | review` — `/ai-team help` explains.",
    "/ai-budget": "Usage: `/ai-budget show | set <project> $N | request <project> $N --reason \"…\" | raise <project> +$N --for 3d --reason \"…\" | cap $N` — `/ai-budget help` explains.",
    "/ai-credits": "Usage: `/ai-credits balance | add $N | statement [--month 2026-11]` — `/ai-credits help` explains.",
    "/ai-usage": "Usage: `/ai-usage [--period day|week|month|last-month] [--by project|member|key|model] [--project P] [--mine]` — `/ai-usage help` explains.",
    "/ai-audit": "Usage: `/ai-audit recent [N] | verify | export [csv|jsonl]` — `/ai-audit help` explains.",
    "/ai-workspace": "Usage: `/ai-workspace list | create | use | policy | channels | allowlist | templates | models | scim | delete` — `/ai-workspace help` explains.",
    "/ai-models": "Usage: `/ai-models [--project P] | request <author/name> --reason \"…\"` — `/ai-models help` explains.",
}

UNEXPECTED = "Something went wrong on Purser's side (error id `{error_id}`). Nothing was changed; try again, and give an admin the error id if it persists."
STORE_AWAY = "Purser cannot reach its database right now (error id `{error_id}`). Try again in a minute; if it went through after all, Purser will say so."
CHOOSE_WORKSPACE = "You are in more than one workspace ({names}). Say which with `-w <name>`, or bind this channel with `/ai-workspace use <name>`."
NO_WORKSPACE = "You are not a member of any Purser workspace yet. Ask an admin to `/ai-invite` you."
QUEUED = "Got it — Purser is busy right now, so this is queued and will go ahead shortly."
INTERRUPTED = "Purser was interrupted while doing {command} and cannot tell whether it went through. Look first (`/ai-key list`, `/ai-audit recent`, `/ai-budget show`), then ask again if it did not."
TOO_LATE = "Purser was too busy to do {command} in time, so it did nothing. Please ask again."
NO_FORM = "Could not open the form; type it instead, like `{command} new search-bot --limit $50`."
NO_CATALOG = "Purser's workers read {provider}'s list of models, and none is answering commands just now. Try again in a minute."
ASK_FOR_MODEL = 'Need one the policy does not allow? `/ai-models request <author/name> --reason "…"` asks the Admins.'
REVEAL_NOT_OPENED = "Slack could not open the window with the secret of {name}, so it was not shown and Purser still has it. Click Reveal again."

#: after a store refusal that names what would help (``DomainError.see``): the command that shows it
SEE = {
    "list_keys": "`/ai-key list` shows your keys.",
    "list_projects": "`/ai-budget show` lists them.",
    "list_workspaces": "`/ai-workspace list` shows yours.",
}
