"""Bulk actions in the background over HTTP (dashboard/api/bulk_actions.py): started by a
real dashboard process, worked through by a real worker's timer loop."""

from __future__ import annotations

from runtime import RunStatus, runs, tasks
from tests.helpers import wait_for

from .conftest import Server


def test_a_bulk_action_over_http_is_started_followed_and_done(server: Server) -> None:
    delayed = [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=["http-bulk"])
               for i in range(4)]
    api = server.client()
    r = api.post("/api/v1/bulk-actions", json={"action": "cancel", "name": "incident 7",
                                               "filter": {"tag": ["http-bulk"]}})
    assert r.status_code == 202, r.text
    started = r.json()
    assert (started["status"], started["name"], started["createdBy"]) == (
        "PENDING", "incident 7", "api:tests")
    done = wait_for(lambda: (a := api.get(f"/api/v1/bulk-actions/{started['id']}").json())
                    ["status"] == "COMPLETED" and a, timeout=60)
    assert (done["success"], done["failure"]) == (4, 0)
    assert {runs.retrieve(h.id).status for h in delayed} == {RunStatus.CANCELED}
    assert [a["id"] for a in api.get("/api/v1/bulk-actions").json()["data"]] == [started["id"]]
    r = api.post(f"/api/v1/bulk-actions/{started['id']}/abort")
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"  # done: stays

    for body, said in [({"action": "cancel"}, "needs a filter"),
                       ({"action": "delete", "filter": {"tag": ["x"]}}, "action must be"),
                       ({"action": "cancel", "runIds": "run_x"}, "runIds is a list"),
                       ({"action": "cancel", "filter": {"status": ["STUCK"]}}, "STUCK"),
                       ({"action": "cancel", "everything": True}, "unknown key")]:
        r = api.post("/api/v1/bulk-actions", json=body)
        assert r.status_code == 400 and said in r.json()["error"], (body, r.text)
    assert api.get("/api/v1/bulk-actions/bulk_nope").status_code == 404
    assert server.client(key=None).get("/api/v1/bulk-actions").status_code == 401
    schema = api.get("/api/openapi.json").json()["components"]["schemas"]["BulkAction"]
    assert set(done) == set(schema["properties"])


def test_the_runs_page_starts_one_and_the_bulk_actions_page_follows_it(server: Server) -> None:
    import html

    from .test_api_safety import login

    delayed = [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=["page-bulk"])
               for i in range(3)]
    other = tasks.trigger("t-echo", {"i": 9}, delay="1h")
    browser = login(server)
    csrf = browser.cookies["bj_csrf"]
    # no filter: refused, nothing started
    r = browser.post("/runs/bulk", data={"csrf": csrf, "action": "cancel-background"},
                     follow_redirects=True)
    assert "needs a filter" in html.unescape(r.text)
    r = browser.post("/runs/bulk", data={"csrf": csrf, "action": "cancel-background",
                                         "tag": "page-bulk"}, follow_redirects=True)
    page = html.unescape(r.text)
    assert "started: cancel in the background" in page and 'id="bulk-actions"' in page
    assert "dashboard:tests" in page and "tags=page-bulk" in page
    wait_for(lambda: {runs.retrieve(h.id).status for h in delayed} == {RunStatus.CANCELED},
             timeout=60)
    assert runs.retrieve(other.id).status == RunStatus.DELAYED  # not in the filtered list
    page = html.unescape(browser.get("/bulk-actions").text)
    row = page.split('id="bulk-actions"', 1)[1].split("</tr>", 2)[1]
    assert "<td>COMPLETED</td><td>3</td><td>0</td>" in row and "Abort" not in row
    assert browser.post("/bulk-actions/bulk_nope/abort", data={}).status_code == 403  # CSRF
