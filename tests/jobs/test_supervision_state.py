"""The supervision state a follower keeps for one job: fed log lines and GPU samples, it says what the
card shows, which alerts are due and which points the chart gets."""

from __future__ import annotations

import math

from intern.bot.supervision import MAX_POINTS, Limits, Supervision, chartable, span

LIMITS = Limits(stall_seconds=60, gpu_idle_seconds=120)


def sample(util: int, used: int = 10_000_000_000) -> dict:
    return {"gpus": {"a1b2c3d4": {"utilization": util, "memory_used_bytes": used,
                                  "memory_total_bytes": 24_000_000_000}}}


def test_progress_comes_from_the_training_bar_not_an_evaluation_bar() -> None:
    s = Supervision(hourly_usd=1.5, timeout_seconds=7200)
    s.feed_line(" 45%|████▌     | 450/1000 [02:10<02:40,  3.43it/s]", 0)
    s.feed_line(" 60%|██████    | 15/25 [00:03<00:02,  4.80it/s]", 1)  # the Trainer's eval loop
    assert (s.step, s.total, s.remaining_s) == (450, 1000, 160.0)
    line = s.card_line("RUNNING", now=600, running_since=0)
    assert line.splitlines()[0] == "RUNNING · 10m elapsed · step 450/1000 (45%) · ETA 2m40s"
    assert "cost so far $0.25" in line


def test_dict_metrics_take_the_step_of_the_bar_and_a_replay_adds_nothing() -> None:
    s = Supervision()
    lines = [f" {p}%|█| {p * 10}/1000 [00:10<00:50, 2.00it/s]\n{{'loss': {2 - p / 100}, 'learning_rate': 1e-05}}"
             for p in (1, 2, 3)]
    for line in lines:
        for part in line.splitlines():
            s.feed_line(part, 0)
    assert s.points()["loss"] == [[10.0, 1.99], [20.0, 1.98], [30.0, 1.97]]
    for line in lines:  # a reconnect replaying the stream from its start
        for part in line.splitlines():
            s.feed_line(part, 1)
    assert len(s.points()["loss"]) == 3 and chartable(s.points())
    assert "epoch" not in s.series and not chartable({"loss": [[1, 1.0], [2, "nan"]]})


def test_points_stay_bounded() -> None:
    s = Supervision()
    for step in range(1, 5 * MAX_POINTS):
        s.feed_line(f"step {step} loss {1 / step}", 0)
    points = s.points()["loss"]
    assert len(points) <= MAX_POINTS and points[0][0] == 1 and points[-1][0] == 5 * MAX_POINTS - 1


def test_each_alert_when_it_is_due() -> None:
    s = Supervision(timeout_seconds=3600)
    s.feed_line("step 5 loss 2.0", 10)
    assert s.alerts(30, running_since=0, limits=LIMITS) == []
    assert [a.kind for a in s.alerts(71, running_since=0, limits=LIMITS)] == ["stall"]
    s.feed_gpu(sample(3), 100, running=True)
    s.feed_gpu(sample(80), 150, running=True)  # busy again: the idle clock starts over
    s.feed_gpu(sample(2), 160, running=True)
    assert "gpu_idle" not in [a.kind for a in s.alerts(250, running_since=0, limits=LIMITS)]
    assert "gpu_idle" in [a.kind for a in s.alerts(281, running_since=0, limits=LIMITS)]
    s.feed_line("  2%|▏         | 20/1000 [00:40<32:40,  2.00s/it]", 300)
    assert "timeout" not in [a.kind for a in s.alerts(300, running_since=0, limits=LIMITS)]  # 300 s + 32m40s < 1 h
    s.feed_line("  2%|▏         | 20/1000 [00:40<1:32:40,  5.67s/it]", 301)
    assert "timeout" in [a.kind for a in s.alerts(301, running_since=0, limits=LIMITS)]
    s.feed_line("{'loss': 1.2, 'grad_norm': inf, 'learning_rate': 1e-05, 'epoch': 0.1}", 302)
    [nan] = [a for a in s.alerts(302, running_since=0, limits=LIMITS) if a.kind == "nan"]
    assert "grad_norm is inf at step 20" in nan.text
    assert math.isinf(s.metrics["grad_norm"]) and s.live(302)["metrics"]["grad_norm"] == "inf"


def test_a_job_not_running_has_only_the_nan_alert() -> None:
    s = Supervision(timeout_seconds=60)
    s.feed_line("[step 3] loss = nan", 0)
    assert [a.kind for a in s.alerts(10_000, running_since=None, limits=LIMITS)] == ["nan"]


def test_span() -> None:
    assert [span(x) for x in (0, 45, 450, 3600, 7830, 90000)] == ["0s", "45s", "7m30s", "1h", "2h10m", "1d1h"]


def test_of_bar_redraws_in_a_row_only_the_last_is_read_and_metrics_keep_their_step() -> None:
    s = Supervision()
    batch = [f" {p}%|█| {p * 10}/1000 [00:10<00:50, 2.00it/s]" for p in range(1, 6)]
    batch += ["{'loss': 1.5, 'learning_rate': 1e-05}", " 6%|█| 60/1000 [00:12<00:48, 2.00it/s]",
              " 7%|█| 70/1000 [00:14<00:46, 2.00it/s]"]
    s.feed_lines(batch, 5.0)
    assert s.points()["loss"] == [[50.0, 1.5]]  # the bar just before the dict
    assert (s.step, s.lines_seen, s.last_line_at) == (70, len(batch), 5.0)


def test_the_stall_clock_goes_by_when_the_lines_were_logged() -> None:
    s = Supervision()
    # A process that takes the job over reads the whole log again at 1000: logged long before.
    s.feed_lines(["step 10 loss 2.0", "step 20 loss 1.8"], 1000.0, logged_at=900.0)
    assert s.last_line_at == 900.0
    assert [a.kind for a in s.alerts(1000.0, running_since=0, limits=LIMITS)] == ["stall"]
    s.feed_lines(["step 30 loss 1.7"], 1001.0, logged_at=1000.5)  # a new line: the job is alive
    assert s.alerts(1001.0, running_since=0, limits=LIMITS) == []
    s.feed_lines(["step 40 loss 1.6"], 1002.0, logged_at=950.0)  # time never runs backwards
    assert s.last_line_at == 1000.5
    s.feed_lines(["step 50 loss 1.5"], 1003.0, logged_at=5000.0)  # a clock ahead of ours: now at most
    assert s.last_line_at == 1003.0
    s.feed_lines(["step 60 loss 1.4"], 1004.0)  # no time from the Hub: the time it was read
    assert s.last_line_at == 1004.0


def test_the_idle_gpu_clock_goes_on_after_a_takeover_only_if_the_gpu_is_still_idle() -> None:
    limits = Limits(stall_seconds=10_000, gpu_idle_seconds=120)
    before = Supervision()
    before.feed_gpu(sample(90), 0, running=True)
    before.feed_gpu(sample(1), 100, running=True)
    assert before.changed and before.live(150)["gpu_idle_since"] == 100

    after = Supervision()
    after.resume(before.live(150))
    assert after.alerts(400, running_since=0, limits=limits) == []  # nothing seen yet: no alert on old news
    after.feed_gpu(sample(2), 400, running=True)
    assert after.gpu_idle_since == 100
    assert [a.kind for a in after.alerts(400, running_since=0, limits=limits)] == ["gpu_idle"]

    busy = Supervision()
    busy.resume(before.live(150))
    busy.feed_gpu(sample(85), 400, running=True)  # the GPU went back to work meanwhile
    busy.feed_gpu(sample(0), 410, running=True)
    assert busy.gpu_idle_since == 410

    fresh = Supervision()
    fresh.resume({"gpu_idle_since": None})
    fresh.resume(None)
    fresh.feed_gpu(sample(0), 500, running=True)
    assert fresh.gpu_idle_since == 500


def test_points_count_their_changes_for_the_writer() -> None:
    s = Supervision()
    s.feed_line("step 10 loss 2.0", 0)
    v = s.series_version
    s.feed_line("step 10 loss 2.0", 1)  # the same point again (a replay): nothing to write
    assert s.series_version == v
    s.feed_line("step 20 loss 1.5", 2)
    assert s.series_version == v + 1


def test_points_keep_a_nan_as_text_and_a_write_takes_a_copy() -> None:
    s = Supervision()
    s.feed_line("step 10 loss 2.0", 0)
    s.feed_line("step 20 loss nan", 1)
    v = s.series_version
    s.feed_line("step 20 loss nan", 2)  # the same NaN again: no change to write
    assert s.series_version == v
    taken = s.points()
    assert taken == {"loss": [[10.0, 2.0], [20.0, "nan"]]} and not chartable(taken)
    s.feed_line("step 30 loss 1.5", 3)
    assert taken["loss"] == [[10.0, 2.0], [20.0, "nan"]]  # what a write took does not grow under it
