"""A check schemathesis runs on every answer canaryd gives: a team's token is never
shown another team's analyses, strategies or deployments.

CANARYD_TEAM names the team of the token under test; unset (an admin token), the check
passes everything.
"""

import os

import schemathesis

TEAM = os.environ.get("CANARYD_TEAM")


def teams_in(value):
    """Every team a JSON answer names: `team` fields and `<team>/<name>` strategies."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "strategy" and isinstance(item, str) and "/" in item:
                yield item.split("/", 1)[0]
            elif key == "team" and isinstance(item, str):
                yield item
            else:
                yield from teams_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from teams_in(item)


@schemathesis.check
def no_other_teams_data(ctx, response, case):
    if not TEAM:
        return None
    try:
        body = response.json()
    except Exception:
        return None
    others = sorted({team for team in teams_in(body) if team != TEAM})
    if others:
        raise AssertionError(f"a {TEAM} token was shown data of team(s) {others}")
    return None
