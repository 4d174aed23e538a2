"""Variants of a step and split tests: services."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pages import documents, selectors, services
from pages.models import Page, PageVersion, SplitTest
from tests.factories import FunnelFactory, StepFactory
from tests.pages.factories import page_with_blocks
from tests.pages.splits import event, record

pytestmark = pytest.mark.django_db


def _headline(page: Page) -> dict:
    return page.document["sections"][0]["rows"][0]["columns"][0]["blocks"][0]


@pytest.fixture
def page(workspace):
    page = page_with_blocks("headline", "button", workspace=workspace)
    page.title = "Free guide"
    page.meta_description = "Grab it"
    page.head_code = "<script>pixel()</script>"
    page.save()
    return page


def test_add_variant_duplicates_document_and_settings(page):
    """Variant B is a copy of A: same blocks and texts, same page settings, a draft."""
    b = services.variant_add(page=page)
    assert b.name == "Variant B"
    assert b.step_id == page.step_id
    assert b.weight == 100
    assert b.published_version is None
    assert b.title == "Free guide"
    assert b.meta_description == "Grab it"
    assert b.head_code == "<script>pixel()</script>"
    assert [
        blk["type"]
        for blk in b.document["sections"][0]["rows"][0]["columns"][0]["blocks"]
    ] == ["headline", "button"]
    assert _headline(b)["settings"] == _headline(page)["settings"]
    assert b.revisions.count() == 1
    # Editing B leaves A alone.
    services.page_edit(
        page=b,
        revision=None,
        operation=lambda d: documents.update_block(
            d, _headline(b)["id"], {"text": "Only B"}
        ),
    )
    page.refresh_from_db()
    b.refresh_from_db()
    assert _headline(b)["settings"]["text"] == "Only B"
    assert _headline(page)["settings"].get("text") != "Only B"


def test_at_most_four_variants_with_a_clear_error(page):
    """C and D are added; a fifth is refused with a message saying why."""
    names = [services.variant_add(page=page).name for _ in range(3)]
    assert names == ["Variant B", "Variant C", "Variant D"]
    with pytest.raises(ValidationError) as exc:
        services.variant_add(page=page)
    assert "at most 4 variants" in exc.value.messages[0]
    assert Page.objects.filter(step=page.step).count() == 4


def test_removed_variant_frees_a_slot_and_keeps_its_letter(page):
    """Removing B allows another variant, named C (B stays B in the history)."""
    b = services.variant_add(page=page)
    services.variant_remove(page=b)
    assert services.variant_add(page=page).name == "Variant C"


def test_rename_validates(page):
    b = services.variant_add(page=page)
    assert services.variant_rename(page=b, name="  Short headline ").name == (
        "Short headline"
    )
    with pytest.raises(ValidationError, match="already called"):
        services.variant_rename(page=b, name="variant a")
    with pytest.raises(ValidationError, match="Give the variant a name"):
        services.variant_rename(page=b, name="   ")
    with pytest.raises(ValidationError, match="at most 80"):
        services.variant_rename(page=b, name="x" * 81)


def test_weights_accept_any_non_negative_integers(page):
    """30/30 is stored as given and means 50/50; all zero or negative is refused."""
    b = services.variant_add(page=page)
    services.variant_weights_set(step=page.step, weights={page.pk: "30", b.pk: 30})
    page.refresh_from_db()
    b.refresh_from_db()
    assert (page.weight, b.weight) == (30, 30)
    assert services.split_percentages([30, 30]) == [50.0, 50.0]
    assert services.split_percentages([1, 3]) == [25.0, 75.0]
    for bad, message in [
        ({page.pk: 0, b.pk: 0}, "At least one variant needs a weight above 0"),
        ({page.pk: -1, b.pk: 10}, "between 0 and 10,000"),
        ({page.pk: "ten", b.pk: 10}, "must be a whole number"),
        ({page.pk: 10, b.pk: 10_001}, "between 0 and 10,000"),
        ({page.pk: 10, 999_999: 10}, "no longer exists"),
    ]:
        with pytest.raises(ValidationError) as exc:
            services.variant_weights_set(step=page.step, weights=bad)
        assert message in exc.value.messages[0]
    page.refresh_from_db()
    assert page.weight == 30


def test_pause_and_resume(page):
    b = services.variant_add(page=page)
    services.variant_weights_set(step=page.step, weights={page.pk: 70, b.pk: 30})
    services.variant_pause(page=b)
    b.refresh_from_db()
    assert b.weight == 0
    with pytest.raises(ValidationError, match="only variant being served"):
        services.variant_pause(page=page)
    services.variant_resume(page=b)
    b.refresh_from_db()
    assert b.weight == 70  # the others' average weight


def _publish(page: Page) -> None:
    services.funnel_publish(funnel=page.step.funnel, user=None)


def test_publish_publishes_every_live_variant_and_starts_the_test(page):
    """Publishing with two variants serves both and starts a split test; a
    removed variant is not published again."""
    _publish(page)
    assert selectors.split_test_running(step=page.step) is None  # one variant
    b = services.variant_add(page=page)
    c = services.variant_add(page=page)
    services.variant_remove(page=c)
    _publish(page)
    page.refresh_from_db()
    b.refresh_from_db()
    c.refresh_from_db()
    assert page.is_served and b.is_served
    assert not c.is_served
    assert c.published_version is None
    assert not PageVersion.objects.filter(page=c).exists()
    test = selectors.split_test_running(step=page.step)
    assert test is not None and test.workspace_id == page.workspace_id
    # Publishing again does not start a second test.
    _publish(page)
    assert SplitTest.objects.filter(step=page.step).count() == 1


def test_remove_mid_test_stops_serving_and_keeps_history(page):
    """A removed variant keeps its page, versions and events but is never served;
    the results still list its numbers, marked removed."""
    b = services.variant_add(page=page)
    _publish(page)
    b.refresh_from_db()
    version = b.published_version
    funnel = page.step.funnel
    at = timezone.now() + timedelta(seconds=1)
    record(
        [
            event(funnel, page.step, uuid.uuid4(), "view", at, variant_id=b.pk),
            event(funnel, page.step, uuid.uuid4(), "view", at, variant_id=page.pk),
        ]
    )
    services.variant_remove(page=b)
    b.refresh_from_db()
    assert b.archived_at is not None
    assert (b.weight, b.published_version_id) == (0, None)
    assert not b.is_served
    assert PageVersion.objects.filter(pk=version.pk).exists()
    with pytest.raises(ValidationError, match="cannot go live again"):
        services.page_rollback(page=b, version=version)
    with pytest.raises(ValidationError, match="already removed"):
        services.variant_remove(page=b)
    with pytest.raises(ValidationError, match="only variant"):
        services.variant_remove(page=page)
    test = selectors.split_test_running(step=page.step)
    report = selectors.split_test_report(step=page.step, test=test)
    rows = {r.spec.label: r for r in report.rows}
    assert rows["Variant B"].spec.removed is True
    assert rows["Variant B"].visitors == 1
    assert rows["Variant A"].visitors == 1
    # The step keeps working with A alone.
    assert services.page_for_step(step=page.step).pk == page.pk


def test_declare_winner(page, owner):
    """B wins: it is the only served variant, A is archived, the test ends with a
    snapshot of its numbers, and the published version of B stays live."""
    b = services.variant_add(page=page)
    _publish(page)
    b.refresh_from_db()
    live_version = b.published_version_id
    funnel = page.step.funnel
    at = timezone.now() + timedelta(seconds=1)
    events = []
    for i in range(6):
        v = uuid.uuid4()
        variant = b if i % 2 else page
        events.append(event(funnel, page.step, v, "view", at, variant_id=variant.pk))
        if variant == b or i == 0:
            events.append(event(funnel, page.step, v, "optin", at))
    record(events)
    test = services.split_test_declare_winner(step=page.step, winner=b, user=owner)
    page.refresh_from_db()
    b.refresh_from_db()
    assert test.ended_at is not None and test.winner_id == b.pk
    assert test.ended_by == owner
    assert (b.weight, b.published_version_id, b.archived_at) == (
        100,
        live_version,
        None,
    )
    assert page.archived_at is not None and not page.is_served
    snap = {v["label"]: v for v in test.results["variants"]}
    assert (snap["Variant A"]["visitors"], snap["Variant A"]["conversions"]) == (3, 1)
    assert (snap["Variant B"]["visitors"], snap["Variant B"]["conversions"]) == (3, 3)
    assert snap["Variant B"]["prob_beat_control"] > 0.9
    assert test.results["goal"] == "Opt-in"
    assert selectors.split_test_running(step=page.step) is None
    assert selectors.split_tests_ended(step=page.step) == [test]
    assert selectors.step_variants(step=page.step) == [b]
    # The step keeps working: the editor and publish use B now.
    assert services.page_for_step(step=page.step).pk == b.pk
    _publish(page)
    b.refresh_from_db()
    assert b.is_served
    # Nothing left to declare.
    with pytest.raises(ValidationError, match="No split test is running"):
        services.split_test_declare_winner(step=page.step, winner=b, user=owner)


def test_declare_winner_refuses_a_removed_or_foreign_variant(page, owner):
    b = services.variant_add(page=page)
    c = services.variant_add(page=page)
    _publish(page)
    services.variant_remove(page=c)
    with pytest.raises(ValidationError, match="current variants"):
        services.split_test_declare_winner(step=page.step, winner=c, user=owner)
    other = StepFactory(funnel=FunnelFactory(workspace=page.workspace))
    foreign = services.page_create_blank(step=other)
    with pytest.raises(ValidationError, match="current variants"):
        services.split_test_declare_winner(step=page.step, winner=foreign, user=owner)
    b.refresh_from_db()
    assert b.is_served
