"""Groups page views into sessions."""

SESSION_TIMEOUT_MINUTES = 30


def sessionize(page_views: list[dict], timeout_minutes: int) -> list[list[dict]]:
    """Page views (sorted by time, `minute` field) split wherever the gap exceeds the timeout."""
    sessions: list[list[dict]] = []
    for view in page_views:
        if sessions and view["minute"] - sessions[-1][-1]["minute"] <= timeout_minutes:
            sessions[-1].append(view)
        else:
            sessions.append([view])
    return sessions
