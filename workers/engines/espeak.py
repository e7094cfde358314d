"""espeak-ng: a formant synthesizer that speaks on any CPU with no weights, used where no GPU is present.

The library comes from the espeakng-loader wheel (libespeak-ng plus its data) and is driven in-process through
ctypes. It is one global C library per process, so every call goes through one process-wide lock.
"""

from __future__ import annotations

import ctypes
import logging
import tempfile
import threading
from functools import cache
from pathlib import Path

import espeakng_loader
import numpy as np

from core.settings import Settings
from tasks.models import ESPEAK_MODEL
from workers.engines.base import (
    Audio,
    AudioPiece,
    ChunkRequest,
    EngineError,
    EngineOutput,
    GenerationParams,
    RequestFailed,
    run_to_completion,
)
from workers.engines.waiting import WaitingRequests

logger = logging.getLogger(__name__)

WARM_UP_TEXT = "Ready."

ESPEAK_SAMPLE_RATE = 22050

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # samples are handed to the callback before espeak_Synth returns
_INITIALIZE_DONT_EXIT = 0x8000  # report a broken data path instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_library_lock = threading.Lock()


class _VoiceProperties(ctypes.Structure):
    """espeak_VOICE: only `languages` is set when selecting a voice by language."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _EspeakLibrary:
    """The initialised libespeak-ng of this process. Callers hold `_library_lock` around every method."""

    def __init__(self) -> None:
        library_path = Path(espeakng_loader.get_library_path())
        self._lib = ctypes.CDLL(str(library_path))
        self._declare_signatures()
        self._pending: list[bytes] = []
        # ctypes callbacks must outlive every call that may invoke them.
        self._callback = _SynthCallback(self._collect)
        # Removed when the process exits; the library reads it for its whole life.
        self._data_root = tempfile.TemporaryDirectory(prefix="espeak-ng-")
        _write_steady_data(Path(espeakng_loader.get_data_path()), Path(self._data_root.name) / "espeak-ng-data")
        # The path names the folder that contains espeak-ng-data.
        sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_root.name.encode(), _INITIALIZE_DONT_EXIT
        )
        if sample_rate != ESPEAK_SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng failed to initialise from {library_path} (returned {sample_rate})")
        self._lib.espeak_SetSynthCallback(self._callback)

    def _declare_signatures(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_VoiceProperties)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

    def _collect(self, samples: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if samples and count > 0:
            self._pending.append(ctypes.string_at(samples, count * ctypes.sizeof(ctypes.c_short)))
        return 0  # 0 = keep synthesizing

    def select_voice_by_name(self, name: str) -> bool:
        return bool(self._lib.espeak_SetVoiceByName(name.encode()) == _EE_OK)

    def select_voice_by_language(self, language: str) -> bool:
        properties = _VoiceProperties(languages=language.encode())
        return bool(self._lib.espeak_SetVoiceByProperties(ctypes.byref(properties)) == _EE_OK)

    def set_rate(self, words_per_minute: int) -> None:
        self._lib.espeak_SetParameter(_PARAMETER_RATE, words_per_minute, 0)

    def synthesize(self, text: str) -> bytes:
        """Speak `text` with the selected voice; returns int16 native-endian samples."""
        encoded = text.encode()
        self._pending = []
        try:
            status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if status != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed with status {status}")
            return b"".join(self._pending)
        finally:
            self._pending = []


def _write_steady_data(source: Path, target: Path) -> None:
    """Lays out espeak-ng's data at `target` with pitch flutter and roughness modulation off in all languages.

    Both effects keep their phase in C statics (a flutter index, a glottal cycle counter) that carry over from
    one utterance to the next and that no API resets: with them on, the same request twice gives different
    audio. The data files are linked; only the small language files are copied, each with the two settings
    appended (the last value wins; a roughness of 8 is past espeak's table and turns the modulation off).
    """
    target.mkdir()
    for entry in source.iterdir():
        if entry.name != "lang":
            (target / entry.name).symlink_to(entry)
    for language_file in (source / "lang").rglob("*"):
        if language_file.is_file():
            copy = target / "lang" / language_file.relative_to(source / "lang")
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(language_file.read_bytes() + b"\nflutter 0\nroughness 8\n")


@cache
def _library() -> _EspeakLibrary:
    """The process's one library instance. Call with `_library_lock` held."""
    return _EspeakLibrary()


class EspeakEngine:
    """Speaks with espeak-ng at its native 22050 Hz: deterministic, about a thousand times realtime.

    espeak-ng does not batch: each step speaks one whole waiting request, as one final piece. It cannot clone
    voices: requests carry the resolved reference clip like any engine's, and it is ignored. `params.language` (a
    language tag such as `fr` or `pt-BR`) picks the espeak voice for that language; without it the configured
    `espeak_voice` speaks. The sampling parameters do not apply to espeak and are ignored. Pitch flutter and
    roughness are off (see `_write_steady_data`), so equal requests give identical audio whatever was spoken before.
    """

    name = ESPEAK_MODEL
    max_batch = 1

    def __init__(self, settings: Settings) -> None:
        self._default_voice = settings.espeak_voice
        self._words_per_minute = settings.espeak_words_per_minute
        self._waiting: WaitingRequests[ChunkRequest] = WaitingRequests()

    @property
    def sample_rate(self) -> int:
        return ESPEAK_SAMPLE_RATE

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def busy(self) -> bool:
        return len(self._waiting) > 0

    def load(self) -> None:
        with _library_lock:
            if not _library().select_voice_by_name(self._default_voice):
                raise EngineError(f"espeak-ng has no voice named {self._default_voice!r} (setting espeak_voice)")
        run_to_completion(self, [ChunkRequest("warm-up", WARM_UP_TEXT, None, GenerationParams())])
        logger.info("espeak-ng ready: voice %s, %d words per minute", self._default_voice, self._words_per_minute)

    def submit(self, request: ChunkRequest) -> None:
        with _library_lock:
            self._select_voice(_library(), request.params)
        self._waiting.push(request.id, request.priority, request)

    def cancel(self, request_id: str) -> None:
        self._waiting.cancel(request_id)

    def step(self) -> list[EngineOutput]:
        request = self._waiting.pop()
        if request is None:
            return []
        try:
            return [AudioPiece(request.id, self._speak(request.text, request.params), final=True)]
        except EngineError as error:
            return [RequestFailed(request.id, error)]

    def _speak(self, text: str, params: GenerationParams) -> Audio:
        with _library_lock:
            library = _library()
            self._select_voice(library, params)
            library.set_rate(self._words_per_minute)
            pcm = library.synthesize(text)
        return (np.frombuffer(pcm, dtype=np.int16) / 32768.0).astype(np.float32)

    def _select_voice(self, library: _EspeakLibrary, params: GenerationParams) -> None:
        if params.language and not self._is_default_language(params.language):
            # espeak matches language tags with hyphens, case-insensitively.
            if not library.select_voice_by_language(params.language.replace("_", "-")):
                raise EngineError(f"espeak-ng has no voice for language {params.language!r}")
        elif not library.select_voice_by_name(self._default_voice):
            raise EngineError(f"espeak-ng has no voice named {self._default_voice!r} (setting espeak_voice)")

    def _is_default_language(self, language: str) -> bool:
        """A bare language tag naming the configured voice's language ("en" for en-us) keeps that voice, instead of
        espeak's first match for the tag (British English for "en")."""
        return language.replace("_", "-").lower() == self._default_voice.split("-")[0].lower()

    def unload(self) -> None:
        """Nothing to release: the library is shared by the whole process and holds only a few megabytes."""
