"""bench/harmonics.py's measure: energy on a pitch's harmonics vs on the frame rate's lines."""

from pathlib import Path

from helpers import load_script

harmonics = load_script(Path(__file__).parents[1] / "bench" / "harmonics.py")


def test_a_pulse_train_is_all_harmonics_and_a_frame_periodic_one_all_lines():
    voice = harmonics.pulse_train(130.0)[16000 // 2 :]
    on_harmonics, on_lines = harmonics.energy_shares(voice, 130.0)
    assert on_harmonics > 0.99 and on_lines < 0.01
    frame_periodic = harmonics.pulse_train(50.0)[16000 // 2 :]  # repeats every 20 ms
    on_harmonics, on_lines = harmonics.energy_shares(frame_periodic, 130.0)
    assert on_lines > 0.8 and on_harmonics < 0.2
