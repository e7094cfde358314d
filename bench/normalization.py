"""What normalisation does for intelligibility: a speech recogniser's word error rate on espeak's speech of
sentences full of numbers, money, dates, phone numbers, URLs and abbreviations, with and without normalisation.

Run: `.venv/bin/python -m bench.normalization` (pocketsphinx and jiwer come with `make bench`). espeak speaks each
sentence three ways: as written (what the engine got before normalisation), normalised (what it gets now) and the
hand-written spoken form itself (the best any normaliser could do with this recogniser). pocketsphinx's bundled
US English model transcribes each, and jiwer scores the transcripts against the spoken form. espeak has its own
reading of digits and some symbols, so "as written" is espeak's front end, not raw symbols; ChatterBox, which has
none, would fare worse.
"""

from __future__ import annotations

import re
import time

import jiwer
import numpy as np
from pocketsphinx import Decoder

from core.settings import Settings
from text.normalize import normalize
from workers.audio.resample import resample
from workers.engines.base import Audio, ChunkRequest, GenerationParams, run_to_completion
from workers.engines.espeak import EspeakEngine

RECOGNISER_RATE = 16000
# pocketsphinx's model was trained on human speech: of espeak's voices, the Klatt variants at a brisk rate are the
# ones it hears best (41 % WER on the spoken forms below, against 82 % for plain en-us at 175 words a minute).
VOICE, WORDS_PER_MINUTE = "en-us+klatt4", 200
LEAD_IN_S = 0.5

# (as written, as a person would say it)
SENTENCES = [
    ("Call 555-1234 by 12/01/2026.", "call five five five one two three four by december first twenty twenty six"),
    ("It costs $3.50 at the store.", "it costs three dollars and fifty cents at the store"),
    ("The house sold for £1.2m last year.", "the house sold for one point two million pounds last year"),
    ("Tickets are €20 each.", "tickets are twenty euros each"),
    ("See https://example.com for details.", "see example dot com for details"),
    ("Write to jane.doe@example.org today.", "write to jane dot doe at example dot org today"),
    (
        "The meeting is at 3:30 pm on 2026-12-01.",
        "the meeting is at three thirty pm on december first twenty twenty six",
    ),
    ("Dr. Smith lives on Elm St. near the park.", "doctor smith lives on elm street near the park"),
    ("Prices rose 45% in 2024.", "prices rose forty five percent in twenty twenty four"),
    ("Read pages 10-20 by the 21st.", "read pages ten to twenty by the twenty first"),
    ("It was -5°C and the wind hit 60 mph.", "it was minus five degrees celsius and the wind hit sixty miles per hour"),
    ("Bring fruit, e.g. apples, pears, etc.", "bring fruit for example apples pears et cetera"),
    ("The score was red vs. blue, 3-2.", "the score was red versus blue three to two"),
    ("Dial +1 (555) 123-4567 now.", "dial plus one five five five one two three four five six seven now"),
    ("Mr. Jones ran 5 km in 20 min.", "mister jones ran five kilometers in twenty minutes"),
    ("Save 1/2 of the 1,500 files.", "save one half of the one thousand five hundred files"),
    ("The 1990s ended on 12/31/1999.", "the nineteen nineties ended on december thirty first nineteen ninety nine"),
    ("Download 16 GB at 100 Mbps.", "download sixteen gigabytes at one hundred megabits per second"),
    ("Version 2.5 ships on April 3, 2026.", "version two point five ships on april third twenty twenty six"),
    ("St. Louis is No. 1 & proud.", "saint louis is number one and proud"),
    ("Wake me at 7am on Jan. 2nd.", "wake me at seven am on january second"),
    ("The 3rd floor holds 250 kg.", "the third floor holds two hundred and fifty kilograms"),
    ("Our revenue hit $5 billion, up 12%.", "our revenue hit five billion dollars up twelve percent"),
    ("Open www.example.co.uk/help now.", "open w w w dot example dot co dot uk slash help now"),
    ("Prof. Lee was born in 1984.", "professor lee was born in nineteen eighty four"),
    ("Add 3/4 of a cup, i.e. 180 ml.", "add three quarters of a cup that is one hundred and eighty milliliters"),
    ("The train leaves at 15:45 from platform 9.", "the train leaves at fifteen forty five from platform nine"),
    (
        "Text 07700 900123 or 555-0199.",
        "text zero seven seven zero zero nine zero zero one two three or five five five zero one nine nine",
    ),
]


def _words(text: str) -> str:
    """What the recogniser can be compared on: lowercase words, no punctuation, hyphens and "and" as spoken."""
    text = text.lower().replace("-", " ")
    return " ".join(re.findall(r"[a-z']+", text))


class Listener:
    def __init__(self) -> None:
        self._decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")

    def transcribe(self, samples: Audio) -> str:
        """Peak-normalised, with half a second of silence either side, as the recogniser's voice detector wants."""
        silence = np.zeros(round(RECOGNISER_RATE * LEAD_IN_S), dtype=np.float32)
        level = 0.5 / max(float(np.abs(samples).max()), 1e-9)
        pcm = (np.concatenate([silence, samples * level, silence]) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""


def main() -> None:
    engine = EspeakEngine(Settings(espeak_voice=VOICE, espeak_words_per_minute=WORDS_PER_MINUTE))
    engine.load()
    listener = Listener()
    params = GenerationParams()
    references: list[str] = []
    transcripts: dict[str, list[str]] = {"as written": [], "normalised": [], "spoken form": []}
    started = time.perf_counter()
    for written, spoken in SENTENCES:
        references.append(_words(spoken))
        for name, text in (("as written", written), ("normalised", normalize(written, "en")), ("spoken form", spoken)):
            speech = run_to_completion(engine, [ChunkRequest(name, text, None, params)])[name]
            audio = resample(speech, engine.sample_rate, RECOGNISER_RATE)
            transcripts[name].append(_words(listener.transcribe(audio)))
    elapsed = time.perf_counter() - started

    print(f"{len(SENTENCES)} sentences, {sum(len(r.split()) for r in references)} reference words")
    print(f"espeak-ng {VOICE} at {WORDS_PER_MINUTE} wpm -> pocketsphinx en-us at {RECOGNISER_RATE} Hz, {elapsed:.1f} s")
    for name, hypotheses in transcripts.items():
        print(f"WER {name:12} {jiwer.wer(references, hypotheses):6.1%}")
    for (written, _), reference, plain, normalised in zip(
        SENTENCES, references, transcripts["as written"], transcripts["normalised"], strict=True
    ):
        print(f"\n{written}\n  heard as written: {plain}\n  heard normalised: {normalised}")
        print(f"  reference:        {reference}")


if __name__ == "__main__":
    main()
