"""How the calibration session allocates, and handing freed heap back before the loop.

Two measures, measured on BpNet at 320x448 (RSS sampled every 10 ms, peak
above the start, 8 images of batch 4; `benchmarks/calibration.py` gives the
whole run's figure):

- ONNX Runtime's CPU arena grows by the next power of two by default
  (`OrtArenaCfg`'s `arena_extend_strategy` 0); growing by what is requested
  (1, `kSameAsRequested`) keeps the arena closer to what one image's run
  needs: peak +574 -> +526 MB. Turning the arena off was worse (+648 MB:
  glibc keeps what ONNX Runtime frees), and `session.disable_prepacking`
  changed nothing. The CPU execution provider takes that setting only from an
  allocator registered with the environment and a session that opts in
  (`session.use_env_allocators`), so it applies to the calibration session
  alone, not to other sessions of the process.
- Building the session copies the model several times (the augmented proto,
  its serialized bytes, ONNX Runtime's own parse); glibc keeps most of that
  freed memory in the process's heap (about 150 MB), where it stays under the
  loop's peak. `malloc_trim(0)` returns it to the system (what dask's
  documentation, "Memory not released back to the OS", recommends for the
  same reason): +656 -> +574 MB, trimmed after shape inference (since made
  weight-free, `tensors._without_weights`) and after the session.
  Elsewhere than glibc it is skipped.
"""

from __future__ import annotations

import ctypes
import threading

import onnxruntime as ort

#: `OrtArenaCfg` arena_extend_strategy: grow by the requested size, not the next power of two.
SAME_AS_REQUESTED = 1

_registered = False
_lock = threading.Lock()


def _register_arena() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        memory = ort.OrtMemoryInfo(
            "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
        )
        # max_mem 0 and -1 elsewhere: ONNX Runtime's defaults for everything but the growth.
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, SAME_AS_REQUESTED, -1, -1))
        _registered = True


def session_options() -> ort.SessionOptions:
    """Options of the calibration session (see the module docstring and `RangeCollector`)."""
    options = ort.SessionOptions()
    # ONNX Runtime's memory pattern plans one block for every intermediate of
    # the first run; with a probe hanging off each activation that block held
    # about twice what the tensors alive at any moment need (3.5 GB instead of
    # 1.9 GB for BpNet at 320x448, batch 8), and it bought no speed we could see.
    options.enable_mem_pattern = False
    _register_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def release_freed_heap() -> bool:
    """Return the heap's free pages to the system (glibc's `malloc_trim`); False if not glibc."""
    # The symbols the interpreter is linked with: glibc's include malloc_trim, musl's do not.
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True
