"""Job supervision on Discord: the alert's `intern:cancel_job:<id>` button (refused privately to
bystanders; `test_discord_restart.py` clicks it through a new process), and charts posted as message attachments (when the job
ends and on `/intern chart`)."""

from __future__ import annotations

from sqlalchemy import func, select

from intern.bot.models import AuditEvent, Job
from intern.standins.hub_jobs import jobs_state
from tests.discord.harness import DiscordHarness, cards, custom_id
from tests.discord.test_discord_flow import launched_job
from tests.e2e.harness import wait_until

PNG = b"\x89PNG\r\n\x1a\n"


async def count(h: DiscordHarness, model: type, *where: object) -> int:
    async with h.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def followed_points(h: DiscordHarness, metric: str, n: int) -> bool:
    """The process following the job has read `n` points of `metric` (what `chart` draws)."""
    async with h.rt.db.session() as db:
        job = (await db.execute(select(Job))).scalar_one()
    points = h.rt.job_watcher.points_of(job.id) if h.rt.job_watcher is not None else None
    return len((points or {}).get(metric, [])) >= n


def charts(h: DiscordHarness, thread: str) -> list:
    return [m for m in h.discord.posted(thread) if any(a["filename"].endswith(".png")
                                                         for a in m.data.get("attachments") or [])]


async def test_alert_cancel_button_cancels_for_the_requester_or_approvers_only(
        harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, job_id = await launched_job(harness)
    jobs = jobs_state(harness.hub)
    jobs.set_gpu(job_id, utilization=90)
    jobs.append_logs(job_id, "[step 120] loss = nan")
    await wait_until(lambda: cards(d, thread, "cancel_job"), timeout=20)
    [alert] = cards(d, thread, "cancel_job")
    assert custom_id(alert, "cancel_job") == f"intern:cancel_job:{job_id}"
    assert "loss is nan at step 120" in alert.text() and job_id in alert.text()
    assert [b["label"] for b in alert.buttons()] == ["Cancel job"]

    [answer] = await d.answered(await d.click(d.message(alert.id), custom_id(alert, "cancel_job"), p.bystander))
    assert answer.ephemeral_to == p.bystander and "Only the person who asked for this job" in answer.content
    assert jobs.job(job_id).stage == "RUNNING"
    [answer] = await d.answered(await d.click(d.message(alert.id), custom_id(alert, "cancel_job"), p.approver))
    assert answer.ephemeral_to == p.approver and "Cancelling job" in answer.content
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=20)
    await wait_until(lambda: any("canceled after" in t for t in d.texts(thread)), timeout=20)
    assert await count(harness, AuditEvent, AuditEvent.kind == "job_cancel_refused") == 1
    assert await count(harness, AuditEvent, AuditEvent.kind == "job_alert") == 1


async def test_chart_command_and_the_chart_at_the_end_are_png_attachments(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, job_id = await launched_job(harness)
    jobs = jobs_state(harness.hub)
    [answer] = await d.answered(await d.slash(p.requester, "chart", channel=thread))
    assert "has not logged three points" in answer.content
    for step, loss in ((10, 2.0), (20, 1.6), (30, 1.3)):
        jobs.append_logs(job_id, f"Step {step}/100 | loss {loss} | lr 1e-04")
    await wait_until(lambda: followed_points(harness, "loss", 3), timeout=15)
    [answer] = await d.answered(await d.slash(p.bystander, "chart", channel=thread))
    assert "Posted the chart" in answer.content
    await wait_until(lambda: charts(harness, thread), timeout=20)
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: len(charts(harness, thread)) == 2, timeout=20)
    for message in charts(harness, thread):
        [attachment] = message.data["attachments"]
        assert attachment["filename"] == f"job-{job_id}-metrics.png"
        assert attachment["content_type"] == "image/png"
        assert attachment["width"] == 800 and attachment["height"] == 450
        assert message.files[attachment["filename"]].startswith(PNG)
        assert job_id in message.content
