"""The shipper: view log lines (nginx's format) into the event table, exactly once."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from analytics import ingest, shipper
from analytics.models import Event, LogOffset, Visitor
from pages.services import funnel_create_from_template, funnel_publish, page_for_step

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.fixture
def live(workspace, owner):
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    funnel_publish(funnel=funnel, user=owner)
    step = funnel.steps.order_by("position").first()
    page = page_for_step(step=step)
    page.refresh_from_db()
    return funnel, step, page


def view(step, page, **over) -> dict:
    line = {
        "t": f"{time.time():.3f}",
        "id": uuid.uuid4().hex,
        "v": "ofv=" + uuid.uuid4().hex.upper(),
        "s": str(step.pk),
        "p": f"{page.pk}-{page.published_version_id}",
        "k": "s",
        "m": "GET",
        "st": "200",
        "q": "",
        "r": "",
        "ua": FIREFOX,
        "pf": "",
        "ip": "203.0.113.7",
    }
    line.update(over)
    return line


def write(name: str, lines: list[dict], tail: bytes = b"") -> None:
    shipper.logs_dir().mkdir(parents=True, exist_ok=True)
    with (shipper.logs_dir() / name).open("ab") as handle:
        for line in lines:
            handle.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
        handle.write(tail)


@pytest.mark.django_db
def test_views_are_stored_with_visitor_variant_and_first_touch(live, workspace):
    """One line is one view: its request id is the event id, its cookie the visitor,
    its query string the visitor's first touch."""
    funnel, step, page = live
    line = view(
        step,
        page,
        q="utm_source=ads&utm_campaign=launch%20day",
        r="https://news.example/",
    )
    write("views.log", [line])
    assert shipper.ship_once() == 1

    event = Event.objects.get()
    assert event.id == uuid.UUID(line["id"])
    assert (event.kind, event.step_id, event.funnel_id) == ("view", step.pk, funnel.pk)
    assert (event.variant_id, event.page_version_id) == (
        page.pk,
        page.published_version_id,
    )
    visitor = Visitor.objects.get(public_id=uuid.UUID(line["v"][4:]))
    assert visitor.workspace_id == workspace.pk
    assert (visitor.utm_source, visitor.utm_campaign) == ("ads", "launch day")
    assert visitor.referrer == "https://news.example/"
    assert visitor.landing_step_id == step.pk


@pytest.mark.django_db
def test_bots_prefetch_head_and_errors_are_not_views(live):
    _, step, page = live
    write(
        "views.log",
        [
            view(step, page, ua="Mozilla/5.0 (compatible; Googlebot/2.1)"),
            view(step, page, m="HEAD"),
            view(step, page, pf="prefetch"),
            view(step, page, st="404"),
            view(step, page, v=""),
            view(step, page, s="999999"),  # a step deleted since
            view(step, page, st="304"),  # a revalidated view is a view
            # Malformed lines are dropped one by one, never the batch.
            view(step, page, t="nan"),
            view(step, page, t="1e30"),
            view(step, page, id="not-a-request-id"),
            view(step, page, p="12"),
        ],
    )
    assert shipper.ship_once() == 1
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_offset_is_durable_and_shipping_again_stores_nothing_twice(live):
    """The offset moves with the COPY; a lost offset re-reads, the ids dedupe."""
    _, step, page = live
    write("views.log", [view(step, page) for _ in range(5)])
    assert shipper.ship_once() == 5
    assert shipper.ship_once() == 0
    offset = LogOffset.objects.get()
    assert offset.position == (shipper.logs_dir() / "views.log").stat().st_size

    LogOffset.objects.all().delete()
    assert shipper.ship_once() == 0
    assert Event.objects.count() == 5


@pytest.mark.django_db
def test_a_failed_copy_leaves_the_offset_where_it_was(live, monkeypatch):
    _, step, page = live
    write("views.log", [view(step, page) for _ in range(3)])

    def broken(*args, **kwargs):
        raise ingest.psycopg.errors.AdminShutdown("gone")

    monkeypatch.setattr(shipper, "views_write", broken)
    with pytest.raises(ingest.psycopg.errors.AdminShutdown):
        shipper.ship_once()
    assert not LogOffset.objects.exists()
    monkeypatch.undo()
    assert shipper.ship_once() == 3


@pytest.mark.django_db
def test_half_a_line_waits_for_its_end_and_rotation_loses_nothing(live):
    """nginx may flush in the middle of a line; a rotated file is finished under
    its new name (same inode)."""
    _, step, page = live
    first = view(step, page)
    raw = json.dumps(first, separators=(",", ":")).encode()
    write("views.log", [view(step, page)], tail=raw[:20])
    assert shipper.ship_once() == 1
    with (shipper.logs_dir() / "views.log").open("ab") as handle:
        handle.write(raw[20:] + b"\n")
    write("views.log", [view(step, page)])
    (shipper.logs_dir() / "views.log").rename(shipper.logs_dir() / "views.log.1")
    write("views.log", [view(step, page), view(step, page)])
    assert shipper.ship_once() == 4
    assert Event.objects.filter(id=uuid.UUID(first["id"])).count() == 1
    assert Event.objects.count() == 5


@pytest.mark.django_db
def test_views_past_the_workspace_retention_are_dropped(live, workspace):
    _, step, page = live
    workspace.event_retention_days = 30
    workspace.save()
    old = time.time() - 40 * 86400
    write("views.log", [view(step, page, t=f"{old:.3f}"), view(step, page)])
    assert shipper.ship_once() == 1


@pytest.mark.django_db
def test_the_python_serving_path_logs_the_same_line(live, public_client, workspace):
    """`make run` serves pages from Python: the view goes to the same kind of log
    and the same shipper stores it, with the visitor of the page's cookie."""
    funnel, step, page = live
    client = public_client(workspace, HTTP_USER_AGENT=FIREFOX)
    response = client.get(f"/{funnel.slug}/?utm_source=mail")
    assert response.status_code == 200
    lines = (shipper.logs_dir() / "app.log").read_text().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert set(line) == set(view(step, page))
    assert (line["s"], line["q"]) == (str(step.pk), "utm_source=mail")
    assert shipper.ship_once() == 1
    event = Event.objects.get()
    assert event.variant_id == page.pk
    assert Visitor.objects.get(public_id=event.visitor_id).utm_source == "mail"


@pytest.mark.django_db
def test_a_form_token_is_accepted_from_the_log_before_the_view_is_shipped(live):
    """The shipper may lag (or be down): the view's line in the log proves the page
    was fetched; a made-up id, another step's view or a quick post do not pass."""
    from leads import spam

    _, step, page = live
    line = view(step, page, t=f"{time.time() - 5:.3f}")
    write("views.log", [view(step, page) for _ in range(50)] + [line])
    assert shipper.view_in_logs(line["id"], step_id=step.pk)["id"] == line["id"]
    assert shipper.view_in_logs(line["id"], step_id=step.pk + 1) is None
    assert shipper.view_in_logs("../etc", step_id=step.pk) is None

    token = spam.check_edge_token(line["id"], step_id=step.pk)
    assert (token.nonce, token.variant_id) == (line["id"], page.pk)
    assert not Event.objects.exists()  # nothing was shipped for it
    with pytest.raises(spam.SpamError, match="quick"):
        spam.check_edge_token(line["id"], step_id=step.pk, now=float(line["t"]) + 1)
    with pytest.raises(spam.SpamError, match="not valid"):
        spam.check_edge_token(uuid.uuid4().hex, step_id=step.pk)


@pytest.mark.django_db
def test_polling_a_log_that_did_not_change_costs_no_query(live):
    """The shipper follows the logs every 0.1 s: a poll that finds nothing new is a
    stat() per file, not a transaction per file."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, step, page = live
    write("views.log", [view(step, page)])
    assert shipper.ship_once() == 1
    with CaptureQueriesContext(connection) as polled:
        assert shipper.ship_once() == 0
    assert len(polled) == 0
    write("views.log", [view(step, page)])
    assert shipper.ship_once() == 1


@pytest.mark.django_db
def test_a_batch_is_set_based_whatever_its_size(live):
    """One COPY, one upsert of the visitors and one insert of the events per batch:
    the statements a batch costs do not grow with its views."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, step, page = live
    write("views.log", [view(step, page)])
    assert shipper.ship_once() == 1  # this month's partition exists from here on
    write("views.log", [view(step, page)])
    with CaptureQueriesContext(connection) as one:
        assert shipper.ship_once() == 1
    write("views.log", [view(step, page, q=f"utm_source=s{i}") for i in range(300)])
    with CaptureQueriesContext(connection) as many:
        assert shipper.ship_once() == 300
    assert len(many) == len(one)
    assert Visitor.objects.count() == 302
