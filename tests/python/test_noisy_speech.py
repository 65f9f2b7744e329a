"""The noisy-speech set the VAD and noise-reduction tests are measured on: its labels and SNRs."""

import numpy as np

import noisy_speech as ns


def test_labels_cover_the_utterances_and_not_the_silences():
    clip = ns.clean_clips(n=1)[0]
    db = ns.frame_rms_db(clip.samples.astype(np.float64))
    # Digital silence between utterances is never speech; the loudest frames always are.
    assert not clip.labels[db < -200].any()
    assert clip.labels[db > db.max() - 10].all()
    assert 0.4 < clip.labels.mean() < 0.9


def test_mix_reaches_the_asked_snr_over_the_speech_frames():
    clip = ns.clean_clips(n=1)[0]
    rng = np.random.default_rng(3)
    for kind in ns.KINDS:
        noisy, noise = ns.mix(clip, ns.make_noise(kind, clip.samples.size, rng), 5.0)
        speech = noisy.astype(np.float64) - noise
        mask = np.repeat(clip.labels, 160)[: speech.size]
        snr = 10 * np.log10(np.mean(speech[mask] ** 2) / np.mean(noise[mask].astype(np.float64) ** 2))
        assert abs(snr - 5.0) < 0.5, (kind, snr)


def test_scores_of_perfect_and_inverted_decisions():
    labels = np.array([False, True, True, False, True])
    assert ns.frame_scores(labels, labels) == (100.0, 100.0, 100.0, 0.0)
    p, r, f1, fa = ns.frame_scores(~labels, labels)
    assert (p, r, f1, fa) == (0.0, 0.0, 0.0, 100.0)
    assert ns.segments_to_frames([(0.01, 0.03)], 5).tolist() == [False, True, True, False, False]
