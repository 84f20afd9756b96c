#ifndef C_FUZZER_DRIVER_H
#define C_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, FuzzerDriver.cpp), linked in by `-sanitize=fuzzer`:
/// parses libFuzzer's command line and runs `callback` on every input.
///
/// SwiftPM gives each executable target a main function of its own, so the targets call
/// this instead of relying on the `main` in libFuzzer's archive.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
