// Scenario -> QEMU argv. Fixed PCI slots let the runner map the guest's block devices
// back to scenario disks: UFS controller i at 00:(4+i).0, virtio-blk disk j at 00:(0x0c+j).0.
#pragma once
#include <string>
#include <vector>

#include "scenario.hpp"

namespace icemu::runner {

struct MachinePaths {
    std::string qemu, kernel, initrd;
    std::string dir;           // per-scenario artifacts directory (images, logs, sockets)
    std::string accel = "tcg"; // "kvm" adds -cpu host (see pick_accel() in machine.hpp)
    std::string extra_append;  // appended to the kernel command line
};

struct EngineOptions {
    bool props_supported = true;        // the QEMU binary knows -device ufs,crypto=...
    bool wrapped_supported = true;      // ... and crypto-wrapped-keys (the hardware key manager)
    bool emmc_wrapped_supported = true; // -device sdhci-pci,crypto-wrapped-keys=... (the eMMC's)
    bool force_off = false;             // --crypto off: every controller crypto=off
    std::string pci_identity; // "" (device default) or "intel-mtl" for every UFS controller
};

constexpr unsigned kUfsSlotBase = 0x04;
constexpr unsigned kVirtioBlkSlotBase = 0x0c;
constexpr unsigned kVirtioSerialSlot = 0x14;

std::string ufs_pci_addr(std::size_t index);        // "0000:00:04.0"
std::string virtio_blk_pci_addr(std::size_t index); // "0000:00:0c.0"

std::string lu_image(const MachinePaths& p, const Controller& c, const Lu& lu);
std::string virtio_image(const MachinePaths& p, const VirtioDisk& d);
std::string event_log_path(const MachinePaths& p, const Controller& c);
std::string qmp_socket(const MachinePaths& p);
std::string guest_socket(const MachinePaths& p);
std::string console_log(const MachinePaths& p);

// Whether controller c runs the engine in this configuration.
bool crypto_enabled(const Controller& c, const EngineOptions& e);

std::vector<std::string> qemu_argv(const Scenario& s, const MachinePaths& p,
                                   const EngineOptions& e);
std::string kernel_append(const Scenario& s);

// The guest's view of the scenario disks for ./icemu shell's /dev/disk/icemu/NAME links:
// "ua@0000:00:04.0:0,ea@0000:00:05.0,vd@0000:00:0c.0" (UFS LUs carry their LUN).
std::string disk_locations(const Scenario& s);

// A command-line number of seconds ("300", "1.5"): the whole text must be a finite number > 0.
// Throws std::invalid_argument with a one-line reason naming the text otherwise.
double parse_seconds(const std::string& text);

// Base64 of the bytes that `hex` (an even number of hex digits) spells, for QEMU's
// "-object secret,format=base64" (a controller's wrapping_key).
std::string hex_to_base64(const std::string& hex);

// Shell-quoted command line for the artifacts' README (copy-paste reproducible).
std::string shell_join(const std::vector<std::string>& argv);

} // namespace icemu::runner
