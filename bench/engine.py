"""espeak engine throughput over the chunker: how many times faster than real time a ~4000-character text speaks.

Run: `.venv/bin/python -m bench.engine`. The text is split exactly as a request would be (300-character chunks),
each chunk is synthesized in turn on one thread, and the load time is left out.
"""

import statistics
import time

from core.settings import Settings
from text.chunker import split_into_chunks
from workers.engines.base import GenerationParams, synthesize_one
from workers.engines.espeak import EspeakEngine

CHUNK_CHARS = 300

# Charles Dickens, "A Christmas Carol" (1843), Stave One: public domain.
PROSE = """\
Marley was dead: to begin with. There is no doubt whatever about that. The register of his burial was signed
by the clergyman, the clerk, the undertaker, and the chief mourner. Scrooge signed it: and Scrooge's name was
good upon 'Change, for anything he chose to put his hand to. Old Marley was as dead as a door-nail.

Mind! I don't mean to say that I know, of my own knowledge, what there is particularly dead about a door-nail.
I might have been inclined, myself, to regard a coffin-nail as the deadest piece of ironmongery in the trade.
But the wisdom of our ancestors is in the simile; and my unhallowed hands shall not disturb it, or the
Country's done for. You will therefore permit me to repeat, emphatically, that Marley was as dead as a
door-nail.

Scrooge knew he was dead? Of course he did. How could it be otherwise? Scrooge and he were partners for I don't
know how many years. Scrooge was his sole executor, his sole administrator, his sole assign, his sole residuary
legatee, his sole friend, and sole mourner. And even Scrooge was not so dreadfully cut up by the sad event, but
that he was an excellent man of business on the very day of the funeral, and solemnised it with an undoubted
bargain.

Oh! But he was a tight-fisted hand at the grindstone, Scrooge! a squeezing, wrenching, grasping, scraping,
clutching, covetous, old sinner! Hard and sharp as flint, from which no steel had ever struck out generous
fire; secret, and self-contained, and solitary as an oyster. The cold within him froze his old features,
nipped his pointed nose, shrivelled his cheek, stiffened his gait; made his eyes red, his thin lips blue; and
spoke out shrewdly in his grating voice. A frosty rime was on his head, and on his eyebrows, and his wiry chin.
He carried his own low temperature always about with him; he iced his office in the dog-days; and didn't thaw
it one degree at Christmas.

External heat and cold had little influence on Scrooge. No warmth could warm, no wintry weather chill him. No
wind that blew was bitterer than he, no falling snow was more intent upon its purpose, no pelting rain less
open to entreaty. Foul weather didn't know where to have him. The heaviest rain, and snow, and hail, and sleet,
could boast of the advantage over him in only one respect. They often "came down" handsomely, and Scrooge
never did.

Nobody ever stopped him in the street to say, with gladsome looks, "My dear Scrooge, how are you? When will you
come to see me?" No beggars implored him to bestow a trifle, no children asked him what it was o'clock, no man
or woman ever once in all his life inquired the way to such and such a place, of Scrooge. Even the blind men's
dogs appeared to know him; and when they saw him coming on, would tug their owners into doorways and up
courts; and then would wag their tails as though they said, "No eye at all is better than an evil eye, dark
master!"

But what did Scrooge care! It was the very thing he liked. To edge his way along the crowded paths of life,
warning all human sympathy to keep its distance, was what the knowing ones call "nuts" to Scrooge.

Once upon a time, of all the good days in the year, on Christmas Eve, old Scrooge sat busy in his
counting-house. It was cold, bleak, biting weather: foggy withal: and he could hear the people in the court
outside, go wheezing up and down, beating their hands upon their breasts, and stamping their feet upon the
pavement stones to warm them. The city clocks had only just gone three, but it was quite dark already: it had
not been light all day: and candles were flaring in the windows of the neighbouring offices, like ruddy smears
upon the palpable brown air. The fog came pouring in at every chink and keyhole, and was so dense without, that
although the court was of the narrowest, the houses opposite were mere phantoms.

The door of Scrooge's counting-house was open that he might keep his eye upon his clerk, who in a dismal little
cell beyond, a sort of tank, was copying letters. Scrooge had a very small fire, but the clerk's fire was so
very much smaller that it looked like one coal.
"""


def main() -> None:
    chunks = split_into_chunks(PROSE, CHUNK_CHARS)
    engine = EspeakEngine(Settings())
    engine.load()
    params = GenerationParams()
    synthesize_one(engine, chunks[0], None, params)  # warm-up: dictionaries, page cache

    latencies: list[float] = []
    audio_seconds = 0.0
    for chunk in chunks:
        start = time.perf_counter()
        audio = synthesize_one(engine, chunk, None, params)
        latencies.append(time.perf_counter() - start)
        audio_seconds += len(audio) / engine.sample_rate
    wall_seconds = sum(latencies)

    print(f"espeak on {engine.device}: {len(PROSE)} characters in {len(chunks)} chunks of <= {CHUNK_CHARS}")
    print(f"audio      {audio_seconds:8.1f} s")
    print(f"wall       {wall_seconds:8.3f} s")
    print(f"realtime   {audio_seconds / wall_seconds:8.0f} x")
    print(f"chunk p50  {statistics.median(latencies) * 1000:8.1f} ms")
    print(f"chunk max  {max(latencies) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
