#pragma once
// Paths baked in at build time by guest-tests/runner/CMakeLists.txt (icemu_runner_defaults);
// empty when that build was configured without them. Environment variables and command-line
// options override each of them.

#ifndef ICEMU_SCENARIO_DIR
#define ICEMU_SCENARIO_DIR ""
#endif
#ifndef ICEMU_MACHINE_DIR
#define ICEMU_MACHINE_DIR ""
#endif
#ifndef ICEMU_DEFAULT_QEMU
#define ICEMU_DEFAULT_QEMU ""
#endif
#ifndef ICEMU_DEFAULT_KERNEL
#define ICEMU_DEFAULT_KERNEL ""
#endif
#ifndef ICEMU_DEFAULT_CHECKER
#define ICEMU_DEFAULT_CHECKER ""
#endif
#ifndef ICEMU_DEFAULT_INITRD
#define ICEMU_DEFAULT_INITRD ""
#endif
