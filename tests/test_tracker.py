import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamiyo.core.observation import ObservationBatch, SlotReport, TrainingSignals
from tamiyo.env.tracker import SignalTracker

LOSS_SCALE = math.log(10)


def make(**config) -> SignalTracker:
    return SignalTracker(max_epochs=25, loss_scale=LOSS_SCALE, **config)


def step(tracker: SignalTracker, epoch: int, loss: float, acc: float = 50.0, peek: bool = False) -> TrainingSignals:
    call = tracker.peek if peek else tracker.update
    return call(epoch, loss + 0.1, acc, loss, acc, 1000, 10, 1)


def run(tracker: SignalTracker, losses: list[float]) -> list[TrainingSignals]:
    return [step(tracker, epoch, loss) for epoch, loss in enumerate(losses)]


# ---- deltas, echo, plateau ----
def test_first_update_has_infinite_loss_delta_and_accuracy_delta_from_zero():
    signals = step(make(), 0, 2.0, acc=12.5)
    assert signals.loss_delta == math.inf
    assert signals.accuracy_delta == 12.5
    assert signals.val_loss_history == (2.0,) and signals.val_accuracy_history == (12.5,)


def test_signals_echo_inputs_and_configuration():
    tracker = make(max_seeds=3, input_dims=2)
    step(tracker, 0, 2.0, acc=10.0)
    signals = tracker.update(1, 1.9, 15.0, 1.5, 14.0, 1234, 56, 2)
    assert (signals.epoch, signals.max_epochs, signals.loss_scale, signals.max_seeds) == (1, 25, LOSS_SCALE, 3)
    assert signals.input_dims == 2
    losses_and_accuracies = (signals.train_loss, signals.train_accuracy, signals.val_loss, signals.val_accuracy)
    assert losses_and_accuracies == (1.9, 15.0, 1.5, 14.0)
    assert (signals.host_params, signals.seed_params, signals.seeds_used) == (1234, 56, 2)
    assert signals.loss_delta == pytest.approx(0.5)
    assert signals.accuracy_delta == pytest.approx(4.0)


def test_plateau_counts_small_gains_and_resets_on_a_real_gain():
    tracker = make()
    accs = [0.3, 10.0, 10.2, 10.6, 10.9, 11.5, 11.5]
    # 0.3 − 0 < 0.5 → 1; +9.7 resets; +0.2, +0.4, +0.3 count; +0.6 resets; +0 counts.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # epoch 0 is exempt from the fraction warning
        counts = [step(tracker, e, 1.0, acc=a).plateau_epochs for e, a in enumerate(accs)]
    assert counts == [1, 0, 1, 2, 3, 0, 1]


def test_custom_plateau_threshold():
    tracker = make(plateau_threshold_pct=2.0)
    counts = [step(tracker, e, 1.0, acc=a).plateau_epochs for e, a in enumerate([50.0, 51.5, 54.0])]
    assert counts == [0, 1, 0]


# ---- stabilisation latch ----
def test_latches_at_the_third_consecutive_stable_epoch():
    losses = [1.0, 0.98, 0.98 * 0.98, 0.98**3, 0.98**4]  # 2 % improvements
    assert [s.host_stabilized for s in run(make(), losses)] == [False, False, False, True, True]


def test_flat_loss_counts_as_stable():
    assert [s.host_stabilized for s in run(make(), [1.0] * 4)] == [False, False, False, True]


def test_regression_does_not_count_and_resets_the_count():
    losses = [1.0, 0.99, 0.98, 1.0, 0.99, 0.98, 0.97]
    assert [s.host_stabilized for s in run(make(), losses)] == [False] * 6 + [True]


def test_large_improvement_resets_the_count():
    losses = [1.0, 0.99, 0.98, 0.90, 0.89, 0.88, 0.87]  # 0.98 → 0.90 is an 8 % improvement
    assert [s.host_stabilized for s in run(make(), losses)] == [False] * 6 + [True]


def test_spike_resets_the_count():
    losses = [1.0, 0.99, 0.98, 2.0, 1.99, 1.98, 1.97]  # 0.98 → 2.0 is a 2× spike
    assert [s.host_stabilized for s in run(make(), losses)] == [False] * 6 + [True]


def test_first_update_never_counts():
    tracker = make(stabilization_epochs=1)
    assert [s.host_stabilized for s in run(tracker, [1.0, 1.0])] == [False, True]


def test_custom_threshold_and_epochs():
    tracker = make(stabilization_threshold=0.01, stabilization_epochs=5)
    losses = [1.0 * 0.995**k for k in range(7)]
    assert [s.host_stabilized for s in run(tracker, losses)] == [False] * 5 + [True, True]
    # With the default 3 % threshold a 2 % step is stable, with 1 % it is not.
    assert not run(make(stabilization_threshold=0.01, stabilization_epochs=1), [1.0, 0.98])[-1].host_stabilized


def test_latch_survives_later_spikes_and_large_improvements():
    tracker = make()
    run(tracker, [1.0, 1.0, 1.0, 1.0])
    assert tracker.is_stabilized
    later = [step(tracker, e, loss).host_stabilized for e, loss in enumerate([5.0, 0.1, float("nan")], start=4)]
    assert later == [True, True, True]


def test_zero_epochs_means_stabilized_from_the_start_and_after_reset():
    tracker = make(stabilization_epochs=0)
    assert step(tracker, 0, 3.0).host_stabilized
    tracker.reset()
    assert tracker.is_stabilized


def test_converged_loss_counts_as_stable():
    assert run(make(stabilization_epochs=2), [0.0, 0.0, 0.0])[-1].host_stabilized


def test_nan_loss_is_a_regression_and_stored():
    signals = run(make(), [1.0, 1.0, float("nan"), 1.0, 1.0])
    assert math.isnan(signals[2].val_loss_history[-1])
    assert [s.host_stabilized for s in signals] == [False] * 5


# ---- bests and histories ----
def test_history_window_caps_the_stored_history_and_signals_carry_the_last_five():
    tracker = make(history_window=6)
    losses = [float(k) for k in range(10, 0, -1)]
    signals = run(tracker, losses)[-1]
    assert tracker.loss_history == tuple(losses[-6:])
    assert tracker.accuracy_history == (50.0,) * 6
    assert signals.val_loss_history == tuple(losses[-5:])


def test_history_window_must_hold_the_observation_history():
    with pytest.raises(ValueError, match="history_window must be ≥ 5"):
        make(history_window=4)


def test_best_values_are_episode_bests_and_ignore_nan():
    tracker = make(history_window=5)
    run(tracker, [0.1] + [1.0] * 6)  # 0.1 has left the 5-epoch window
    signals = step(tracker, 7, float("nan"), acc=float("nan"))
    assert signals.best_val_loss == 0.1
    assert signals.best_val_accuracy == 50.0
    assert step(tracker, 8, 2.0, acc=70.0).best_val_accuracy == 70.0
    assert step(tracker, 9, 2.0, acc=60.0).best_val_accuracy == 70.0


def test_signals_pack_into_the_observation_contract():
    signals = run(make(), [2.0, 1.5, 1.2, 1.1, 1.0, 0.9])[-1]
    batch = ObservationBatch.pack([signals], [[SlotReport.empty()]])
    row = signals.to_row()
    assert row == pytest.approx(batch.signals[0].tolist(), rel=1e-6)
    assert TrainingSignals.from_row(row) == signals


# ---- peek ----
epoch_inputs = st.tuples(
    st.sampled_from([1.0, 0.995, 0.98, 0.9, 1.3, 2.0]),  # multiplicative loss change
    st.floats(0.0, 100.0),  # val accuracy
)


@settings(max_examples=40, deadline=None)
@given(start=st.floats(0.05, 5.0), epochs=st.lists(epoch_inputs, min_size=1, max_size=12),
       window=st.integers(5, 7), stable_epochs=st.integers(0, 3))
def test_peek_equals_the_next_update_and_changes_nothing(start, epochs, window, stable_epochs):
    with_peeks = make(history_window=window, stabilization_epochs=stable_epochs)
    without_peeks = make(history_window=window, stabilization_epochs=stable_epochs)
    loss = start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random accuracies may look like fractions
        for epoch, (factor, acc) in enumerate(epochs):
            loss *= factor
            args = (epoch, loss + 0.1, acc, loss, acc, 100, 5, 0)
            peeked = with_peeks.peek(*args)
            assert with_peeks.peek(*args) == peeked
            assert with_peeks.update(*args) == peeked
            assert without_peeks.update(*args) == peeked
            assert with_peeks.loss_history == without_peeks.loss_history
            assert with_peeks.is_stabilized == without_peeks.is_stabilized


# ---- warnings ----
def test_fraction_accuracy_warns_once():
    tracker = make()
    step(tracker, 0, 1.0, acc=0.5)  # epoch 0 is exempt: an untrained host can score below 1 %
    with pytest.warns(UserWarning, match=r"val_accuracy=0\.6 does not look like a percentage"):
        step(tracker, 1, 1.0, acc=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(tracker, 2, 1.0, acc=0.7)
        tracker.reset()
        step(tracker, 1, 1.0, acc=0.7)  # still once per tracker, across episodes


def test_accuracy_above_100_warns():
    with pytest.warns(UserWarning, match="val_accuracy=150.0"):
        make().update(0, 1.0, 50.0, 1.0, 150.0, 10, 0, 0)


@pytest.mark.parametrize("acc", [0.0, 1.5, 100.0, -3.0])
def test_plausible_or_zero_accuracy_is_silent(acc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(make(), 3, 1.0, acc=acc)


def test_peek_never_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(make(), 3, 1.0, acc=0.5, peek=True)


# ---- reset and validation ----
def test_reset_clears_state_and_keeps_configuration():
    tracker = make(history_window=7, plateau_threshold_pct=1.0)
    run(tracker, [1.0] * 5)
    tracker.reset()
    assert tracker.loss_history == () and not tracker.is_stabilized
    assert (tracker.history_window, tracker.plateau_threshold_pct) == (7, 1.0)
    assert step(tracker, 0, 1.0) == step(make(history_window=7, plateau_threshold_pct=1.0), 0, 1.0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_epochs": 0}, "max_epochs must be ≥ 1, got 0"),
        ({"loss_scale": 0.0}, "loss_scale must be a positive finite number, got 0.0"),
        ({"max_seeds": -1}, "max_seeds must be ≥ 0"),
        ({"input_dims": 0}, "input_dims must be ≥ 1, got 0"),
        ({"kind_index": 2, "kinds": 2}, r"kind_index must be in \[0, kinds\) = \[0, 2\), got 2"),
        ({"kinds": 0}, r"kind_index must be in \[0, kinds\) = \[0, 0\), got 0"),
        ({"stabilization_threshold": 0.0}, "stabilization_threshold must be positive"),
        ({"stabilization_epochs": -1}, "stabilization_epochs must be ≥ 0, got -1"),
        ({"plateau_threshold_pct": math.nan}, "plateau_threshold_pct must be finite"),
    ],
)
def test_bad_configuration_is_rejected(config, message):
    base = {"max_epochs": 25, "loss_scale": LOSS_SCALE} | config
    with pytest.raises(ValueError, match=message):
        SignalTracker(**base)


def test_bad_counts_are_rejected_by_update_and_peek():
    tracker = make(max_seeds=2)
    with pytest.raises(ValueError, match="seeds_used=3 exceeds the germination budget max_seeds=2"):
        tracker.update(0, 1.0, 50.0, 1.0, 50.0, 10, 0, 3)
    with pytest.raises(ValueError, match="epoch must be ≥ 0, got -1"):
        tracker.peek(-1, 1.0, 50.0, 1.0, 50.0, 10, 0, 0)
    assert tracker.loss_history == ()

