"""`benchmarks.measure.interleaved_medians` on a simulated clock: each timed call runs hot,
after a pause and untimed calls of the same unit, round-robin between the units."""
import pytest

from benchmarks import measure


class Machine:
  """A simulated clock and a unit of work that is `cold` seconds long when it starts after
  more than `idle` seconds without work (the machine waking up) and `hot` seconds otherwise."""

  def __init__(self, cold=0.02, hot=0.001, idle=0.05):
    self.now, self.last_end, self.cold, self.hot, self.idle = 0.0, float("-inf"), cold, hot, idle
    self.calls = []

  def perf_counter(self):
    return self.now

  def sleep(self, seconds):
    self.now += seconds

  def unit(self, name):
    def call():
      self.calls.append(name)
      self.now += self.cold if self.now - self.last_end > self.idle else self.hot
      self.last_end = self.now
    return call


def test_each_timed_call_runs_hot_after_the_pause(monkeypatch):
  machine = Machine()
  monkeypatch.setattr(measure, "time", machine)
  medians = measure.interleaved_medians(
      {"a": machine.unit("a"), "b": machine.unit("b")}, repeats=3, settle_s=0.1, hot_s=0.03)
  assert medians == pytest.approx({"a": 0.001, "b": 0.001})
  # per turn: the cold call (0.02 s), hot calls until 0.03 s have passed (10), the timed one
  turn = 1 + 10 + 1
  assert machine.calls == ["a", "b"] + (["a"] * turn + ["b"] * turn) * 3


def test_a_unit_longer_than_hot_s_is_called_once_untimed(monkeypatch):
  machine = Machine(cold=0.5, hot=0.2)
  monkeypatch.setattr(measure, "time", machine)
  medians = measure.interleaved_medians({"step": machine.unit("step")}, repeats=2, warmup=0,
                                        settle_s=0.1, hot_s=0.1)
  assert medians == pytest.approx({"step": 0.2})
  assert len(machine.calls) == 2 * 2
