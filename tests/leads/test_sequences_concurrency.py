"""Never twice per lead and step: many threads, then two real Celery worker
processes sending to a real SMTP receiver, all racing over the same enrolments
against real Postgres."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.core import mail
from django.db import connection

from config.celery import app
from leads.models import EnrollmentStatus, Lead, SequenceEnrollment, SequenceSend
from leads.sequences import services as seq
from leads.tasks import sequence_send_task
from tests.smtp import SMTPReceiver
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

_lock = threading.Lock()


class SlowBackend:
    """Takes its time, as a real server does, so racers overlap the send."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        time.sleep(0.15)
        with _lock:
            mail.outbox.extend(messages)
        return len(messages)


def _sequence(workspace, steps: int = 3):
    s = seq.sequence_save(workspace=workspace, name="Race")
    for n in range(steps):
        seq.sequence_step_save(
            sequence=s, subject=f"Step {n + 1}", body=f"Body {n + 1}", delay_minutes=0
        )
    return s


def test_racing_threads_send_each_step_once(workspace, settings):
    """Eight threads call the sender for the same enrolment again and again (and
    each send queues the next step, eagerly, in the same thread): each of the three
    steps goes out exactly once, in order."""
    settings.EMAIL_BACKEND = "tests.leads.test_sequences_concurrency.SlowBackend"
    s = _sequence(workspace)
    lead = Lead.objects.create(workspace=workspace, email="race@example.com")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # no sends queued by enrolment itself
    try:
        seq.sequence_enroll(sequence=s, lead_ids=[lead.pk], source="manual")
    finally:
        app.conf.task_always_eager = eager
    enrollment = SequenceEnrollment.objects.get()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def racer():
        try:
            barrier.wait()
            for _ in range(6):
                outcome = seq.enrollment_send_next(enrollment_id=enrollment.pk)
                with _lock:
                    outcomes.append(outcome.status)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [m.subject for m in mail.outbox] == ["Step 1", "Step 2", "Step 3"]
    assert SequenceSend.objects.filter(status="sent").count() == 3
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert outcomes.count("sent") <= 3  # eager follow-ups sent some of them


def test_racing_clicks_are_all_counted_and_the_first_one_kept(workspace):
    """Eight threads follow the same tracked link five times each: forty clicks
    counted, one first-click time, and the click marks the mail opened."""
    s = seq.sequence_save(workspace=workspace, name="Clicks")
    seq.sequence_step_save(
        sequence=s, subject="Hi", body="Read https://example.com/a", delay_minutes=0
    )
    lead = Lead.objects.create(workspace=workspace, email="click@example.com")
    seq.sequence_enroll(sequence=s, lead_ids=[lead.pk], source="manual")
    send = SequenceSend.objects.get()
    barrier = threading.Barrier(8)
    urls: list[str | None] = []
    errors: list[BaseException] = []

    def racer():
        try:
            barrier.wait()
            for _ in range(5):
                url = seq.send_clicked(
                    send_public_id=str(send.public_id),
                    index=0,
                    workspace_id=workspace.pk,
                )
                with _lock:
                    urls.append(url)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert urls == ["https://example.com/a"] * 40
    send.refresh_from_db()
    assert send.clicks == 40
    assert send.clicked_at is not None and send.opened_at == send.clicked_at
    first = send.clicked_at
    seq.send_clicked(
        send_public_id=str(send.public_id), index=0, workspace_id=workspace.pk
    )
    send.refresh_from_db()
    assert (send.clicks, send.clicked_at) == (41, first)


@pytest.mark.worker
def test_two_worker_processes_with_duplicate_tasks_send_each_mail_once(workspace):
    """Ten leads, three steps each, every task queued four times to two worker
    processes: the SMTP receiver gets exactly thirty messages, one per lead and
    step."""
    s = _sequence(workspace)
    leads = [
        Lead.objects.create(workspace=workspace, email=f"p{n}@example.com")
        for n in range(10)
    ]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with SMTPReceiver() as smtp:
            env = {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp.port),
            }
            with celery_worker(env=env), celery_worker(env=env):
                seq.sequence_enroll(
                    sequence=s, lead_ids=[lead.pk for lead in leads], source="manual"
                )
                for enrollment in SequenceEnrollment.objects.all():
                    for _ in range(3):
                        sequence_send_task.delay(enrollment.pk)
                done = wait_for(
                    lambda: (
                        SequenceEnrollment.objects.filter(
                            status=EnrollmentStatus.COMPLETED
                        ).count()
                        == 10
                    ),
                    timeout=90,
                )
                time.sleep(1.0)  # duplicates still queued find nothing to send
            messages = list(smtp.messages)
    finally:
        app.conf.task_always_eager = eager
    assert done, "the workers did not finish the sequences"
    sent = Counter((m["To"], m["Subject"]) for m in messages)
    assert len(messages) == 30
    assert set(sent.values()) == {1}
    assert {subject for _to, subject in sent} == {"Step 1", "Step 2", "Step 3"}
    first = messages[0]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # (Long headers are folded onto the next line: the value is the same.)
    assert (
        first["List-Unsubscribe"]
        .strip()
        .startswith(f"<http://{workspace.slug}.localhost/")
    )


@pytest.mark.worker
def test_a_real_worker_retries_a_refused_mail_and_sends_it_once(workspace):
    """The SMTP server answers "451 try again later" twice: the worker's task
    retries after its backoff (one second here) and the third try is delivered,
    once."""
    s = _sequence(workspace, steps=1)
    lead = Lead.objects.create(workspace=workspace, email="later@example.com")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with SMTPReceiver() as smtp:
            smtp.refuse = 2
            env = {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp.port),
                "SEQUENCE_RETRY_SECONDS": "1,1,1,1",
            }
            with celery_worker(env=env):
                seq.sequence_enroll(sequence=s, lead_ids=[lead.pk], source="manual")
                done = wait_for(
                    lambda: SequenceSend.objects.filter(status="sent").exists(),
                    timeout=60,
                )
            messages = list(smtp.messages)
            refused_left = smtp.refuse
    finally:
        app.conf.task_always_eager = eager
    assert done, "the worker did not deliver after retrying"
    assert refused_left == 0
    send = SequenceSend.objects.get()
    assert (send.status, send.attempts, send.error) == ("sent", 3, "")
    assert [m["To"] for m in messages] == ["later@example.com"]
